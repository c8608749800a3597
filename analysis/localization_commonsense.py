"""Localization across the commonsense tasks: which attention heads JoLA's gates keep on each of the eight
commonsense-reasoning benchmarks (embedded data, no data folder needed), and how much the tasks share them.

One JoLA edit per task (formulation "cloze": the question alone, the option's text as target, which the bare
model can already rank), scored against the bare model on the same test items by option likelihood, plus a seed
control (the first two tasks trained again with another seed). Writes the task x head grid,
depth profile, overlap matrices (Jaccard, Spearman), the gate trajectories of one task and the tables into
analysis/results/localization_commonsense/ (see analysis/studies.py for the file list).

    python analysis/localization_commonsense.py --limit 100 --output analysis/results/localization_commonsense_localize
        # CPU-sized, the studies' default gate settings (the localize preset)
    python analysis/localization_commonsense.py --limit 100 --preset none   # analysis/results/localization_commonsense/:
        # the spec's random gates and noise, penalty x10 (24 min on 2 idle cores)
    python analysis/localization_commonsense.py --preset none --reuse       # keep its finished runs, redraw the figures
    python analysis/localization_commonsense.py --paper --train-size 149   # the paper's protocol (ARC-c: 149)
"""

import studies

TASKS = tuple(studies.StudyTask(f"commonsense/{name}", "commonsense")
              for name in ("ARC-c", "ARC-e", "BoolQ", "HellaSwag", "OBQA", "PIQA", "SIQA", "WinoGrande"))

INTRO = ("One JoLA edit per commonsense task on the embedded SmolLM2-135M-Instruct, trained on the embedded data "
         "(HF validation splits, a seeded training pool carved off, the rest the test set). The question: do the "
         "gates keep the same heads for every commonsense task, and where in depth do they sit?")


def main(argv: list[str] | None = None) -> None:
    args = studies.parse_args(__doc__, "localization_commonsense", TASKS, argv=argv)
    studies.run_study("Localization across the commonsense tasks", INTRO, TASKS, args)


if __name__ == "__main__":
    main()
