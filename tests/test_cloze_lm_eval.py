"""The cloze formulation feeds the model what lm-evaluation-harness 0.4.13 does, task by task.

The expected (context, continuation) pairs below were written out from lm-eval 0.4.13's own task definitions
(``Task.fewshot_context(doc, num_fewshot=0)`` and ``Task.construct_requests``, tasks arc_easy, arc_challenge,
boolq, hellaswag, openbookqa, piqa, social_iqa, winogrande) on the rows of the embedded copies; lm-eval itself is
not imported here.
"""

from __future__ import annotations

import pytest

from jola_lens.scoring import option_requests
from jola_lens.tasks import ALPACA_TEMPLATE, get_task

WINO = "Sarah was a much better surgeon than Maria so "
CASES = {  # task: {embedded row: ([lm-eval contexts], [lm-eval continuations], gold index)}
    "commonsense/ARC-e": {
        0: (["Question: Which technology was developed most recently?\nAnswer:"],
            [" cellular telephone", " television", " refrigerator", " airplane"], 0),
        2: ([("Question: Soccer players use their muscle systems to kick a ball into a goal. What organ system "
             "coordinates the muscles?\nAnswer:")],
            [" The nervous system", " The endocrine system", " The respiratory system", " The circulatory system"], 0),
    },
    "commonsense/ARC-c": {
        0: ([("Question: Juan and LaKeisha roll a few objects down a ramp. They want to see which object rolls the "
             "farthest. What should they do so they can repeat their investigation?\nAnswer:")],
            [" Put the objects in groups.", " Change the height of the ramp.", " Choose different objects to roll.",
             " Record the details of the investigation."], 3),
    },
    "commonsense/BoolQ": {  # lm-eval lists " no", " yes"; this task keeps its true/false order
        2644: ([("The season is set for release in 2019.\nQuestion: are they going to make a punisher season 2?\n"
                "Answer:")], [" yes", " no"], 0),
        1827: ([("The sixth and final season premiered on 19 August 2018.\nQuestion: is a place to call home finished "
                "for good?\nAnswer:")], [" yes", " no"], 1),
    },
    "commonsense/HellaSwag": {
        0: (["Roof shingle removal: A man is sitting on a roof. He"],
            [" is using wrap to wrap a pair of skis.", " is ripping level tiles off.", " is holding a rubik's cube.",
             " starts pulling up roofing on a roof."], 3),
        3243: ([("Personal Care and Style: How to become a fashion consultant. Obtain your high school diploma or ged. "
                "This job requires a high school diploma or equivalent, so make sure to apply yourself and finish "
                "school. If your high school offers these classes, take art, design, and sewing to familiarize "
                "yourself with foundational concepts in fashion.")],
               [("  Many high schools have classes offered for their students who do not have a high school diploma, "
                "so be sure to register to take these classes and find a job in your field.. Search for entry-level "
                "positions in fashion industries."),
                (" Having an associate's degree in business, political science, economics, or practically anything "
                "else will help you hone and prepare for your future work. Some graduate schools also have dress "
                "code and headband classes for all subjects in their fashion departments."),
                (" You should also be able to show the world what fashion is, even the fundamentals. If you have not "
                "achieved your high school diploma or ged, obtain your ged by getting your ged at an accredited "
                "college or applying to a variety of colleges or universities."),
                ("  Earn a bachelor's degree in a fashion-related field. Degrees for the fashion industry include art, "
                "fashion merchandising, and marketing.")], 3),
    },
    "commonsense/OBQA": {
        0: ([("Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they are known "
             "as")], [" Deep sea animals", " fish", " Long Sea Fish", " Far Sea Animals"], 0),
        1: (["Gas can fill any container it is given, and liquid"],
            [" is standard weight and size", " is the opposite of variable", " only needs a few",
             " uses what it needs"], 3),
    },
    "commonsense/PIQA": {
        0: (["Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"],
            [(" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you "
             "will also need to supply it with a water bottle and a food dish."),
             (" Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you "
             "will also need to supply it with a water bottle and a food dish.")], 0),
    },
    "commonsense/SIQA": {
        0: ([("Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before "
             "this?\nA:")], [" make a new plan", " Go home and see Riley", " Find somewhere to go"], 2),
    },
    "commonsense/WinoGrande": {  # partial scoring: one context per option, one shared continuation
        0: ([WINO + "Sarah", WINO + "Maria"],
            [" always got the easier cases."], 1),
        1: ([WINO + "Sarah", WINO + "Maria"],
            [" always got the harder cases."], 0),
    },
}


def embedded_cloze(name: str) -> tuple:
    task = get_task(name, source="embedded", formulation="cloze")
    by_row = {int(e.id.rsplit(":", 1)[1]): e for e in task.load_split("train") + task.load_split("test")}
    return task, by_row


@pytest.mark.parametrize("name", CASES)
def test_prompts_and_continuations_are_lm_evals(name):
    task, by_row = embedded_cloze(name)
    for row, (contexts, continuations, gold) in CASES[name].items():
        example = by_row[row]
        n = max(len(contexts), len(continuations))
        expected = [(contexts[k % len(contexts)], continuations[k % len(continuations)]) for k in range(n)]
        assert option_requests(task, example, "plain") == expected
        assert example.answer_index == gold
        assert option_requests(task, example, "alpaca") == [(ALPACA_TEMPLATE.format(instruction=c), o)
                                                            for c, o in expected]
        # training reads the same continuation after the gold prompt
        assert (task.prompt(example, "plain"), example.target) == expected[gold]


def test_the_chat_wrapper_surrounds_the_cloze_prompt():
    class ChatTokenizer:
        chat_template = "<user>{content}</user><assistant>"

        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            assert add_generation_prompt and not tokenize
            return f"<user>{messages[0]['content']}</user><assistant>"

    task, by_row = embedded_cloze("commonsense/ARC-e")
    assert option_requests(task, by_row[0], "chat", ChatTokenizer())[1] == (
        "<user>Question: Which technology was developed most recently?\nAnswer:</user><assistant>", " television")


def test_other_formulations_are_unchanged():
    task = get_task("commonsense/ARC-e", source="embedded")
    example = next(e for e in task.load_split("test") + task.load_split("train") if e.id.endswith(":0"))
    assert example.instruction.startswith("Please choose the correct answer to the question: Which technology")
    assert example.choices == ("answer1", "answer2", "answer3", "answer4") and not example.option_instructions


def test_local_files_follow_lm_eval_where_their_fields_allow(data_dir):
    arc = get_task("commonsense/ARC-e", data_dir=data_dir, source="local", formulation="cloze").load_split("test")[0]
    assert arc.instruction == ("Question: Which statement best explains why photosynthesis is the foundation of most "
                               "food webs?\nAnswer:")
    assert arc.choices[0] == " Sunlight is the source of energy for nearly all ecosystems."
    # WinoGrande, SIQA: the LLM-Adapters test items are the embedded rows, and give lm-eval's strings exactly
    for name in ("commonsense/WinoGrande", "commonsense/SIQA"):
        local = get_task(name, data_dir=data_dir, source="local", formulation="cloze")
        _, by_row = embedded_cloze(name)
        embedded = {(e.instruction, e.choices, e.option_instructions) for e in by_row.values()}
        assert {(e.instruction, e.choices, e.option_instructions) for e in local.load_split("test")} == embedded
    # HellaSwag: no ctx_a/ctx_b in the text file, yet the same prompt ("... He", capitalized as lm-eval does)
    hellaswag = get_task("commonsense/HellaSwag", data_dir=data_dir, source="local", formulation="cloze")
    first = next(e for e in hellaswag.load_split("test") if e.id.endswith(":0"))
    assert (first.instruction, first.choices) == (CASES["commonsense/HellaSwag"][0][0][0],
                                                  tuple(CASES["commonsense/HellaSwag"][0][1]))
