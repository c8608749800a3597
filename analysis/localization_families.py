"""Localization across task families: do commonsense QA, MMLU-Pro and GEM generation tasks make JoLA's gates keep
the same attention heads? Two tasks per family; MMLU-Pro and GEM read the benchmark data (--data-dir or
$JOLA_DATA_DIR), commonsense uses the embedded copies.

Multiple-choice tasks (commonsense, MMLU-Pro) use the cloze formulation (the question alone, the option text as
target) and are scored by option likelihood; GEM tasks by the paper's 4-beam generation (ROUGE-L, BLEU) on fewer
items. Writes the same figures and tables as localization_commonsense.py into
analysis/results/localization_families/; run labels carry the family ("commonsense/...", "mmlu_pro/...",
"gem/..."). The settings equal the commonsense study's, so its ARC-e and PIQA runs can be copied here and kept
with --reuse.

    python analysis/localization_families.py --data-dir ../shared/data --limit 100 --gen-limit 32 --preset none
        # the committed results: CPU-sized, the spec's gates and noise, penalty x10 (56 min of compute on 2 cores
        # shared with another study); without --preset none the studies' default, the localize preset
    python analysis/localization_families.py --data-dir DATA --preset none --reuse   # keep finished runs, redraw
    python analysis/localization_families.py --data-dir DATA --paper        # the paper's protocol
"""

import studies

TASKS = (
    studies.StudyTask("commonsense/ARC-e", "commonsense"),
    studies.StudyTask("commonsense/PIQA", "commonsense"),
    studies.StudyTask("mmlu_pro/economics", "MMLU-Pro", source="local"),
    studies.StudyTask("mmlu_pro/psychology", "MMLU-Pro", source="local"),
    studies.StudyTask("gem/common_gen", "GEM", source="local", scoring="generation"),
    studies.StudyTask("gem/e2e_nlg", "GEM", source="local", scoring="generation"),
)

INTRO = ("One JoLA edit per task for two tasks of each family the paper evaluates (commonsense reasoning, MMLU-Pro, "
         "GEM generation) on the embedded SmolLM2-135M-Instruct. The question: are the heads the gates keep "
         "specific to a family — do tasks of one family overlap more with each other than with the others?")


def main(argv: list[str] | None = None) -> None:
    args = studies.parse_args(__doc__, "localization_families", TASKS, argv=argv)
    studies.run_study("Localization across task families", INTRO, TASKS, args)


if __name__ == "__main__":
    main()
