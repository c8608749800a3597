"""GEM generation tasks: CommonGen, E2E NLG, WebNLG (English) and XSum, prompted with PromptSource templates.

Prompts come from the PromptSource files under `<data folder>/promptsource/` (needed for every source). Default
template per task, another one via `template=` (original-task templates only):
    common_gen: "Given concepts type 1"        (promptsource/common_gen)
    e2e_nlg:    "coherent_text"                (promptsource/e2e_nlg_cleaned)
    web_nlg:    "implicit-graph-description"   (promptsource/GEM/web_nlg/en)
    xsum:       "article_DOC_summary"          (promptsource/GEM/xsum)

Local data and splits. "train" has one example per (input, reference) pair; "validation" and "test" have one
example per distinct input with all its references (metrics use them all):
* CommonGen (gem/common_gen): train 39,069 pairs (27,069 concept sets, an older release than GEM's), validation
  993 and test 1,497 concept sets (6,042 references).
* E2E (gem/e2e_nlg): train = original trainset.csv (42,061 pairs; GEM's cleaned train is missing), validation =
  cleaned devel-fixed.no-ol.csv (4,299 rows, 1,484 MRs), test = cleaned test-fixed.csv (4,693 rows, 1,847 MRs),
  grouped by the cleaned MR.
* WebNLG 3.0 en (gem/web_nlg): train 35,426 lexicalisations, validation 1,667 and test 1,779 entries (5,150
  references); input = the modified triples "A | p | B", parsed with xml.etree.
* XSum: only the 1,001 GEM test articles from BIG-bench (gem/bigbench_gem/xsum/task.json). A fixed seeded pool of
  400 (carve seed 0) is the training pool ("train"), the other 601 are the test set.
From the hub (GEM/<task>, GEM's own splits), rows are turned into examples the same way.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from jola_lens.tasks.base import GENERATION_MAX_NEW_TOKENS, Task
from jola_lens.tasks.examples import Example
from jola_lens.tasks.files import BadRecordError, Record, check_policy, convert_records, read_records, require_file
from jola_lens.tasks.hf_data import read_hub_split
from jola_lens.tasks.parsing import first_line
from jola_lens.tasks.promptsource import render_prompt_part, select_template
from jola_lens.tasks.registry import register_aliases
from jola_lens.tasks.scoring import score_generation
from jola_lens.tasks.sources import DATA_DIR_HINT, data_root, resolve_source
from jola_lens.tasks.splits import capped_half, carve

XSUM_POOL = 400
HUB_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Entry:
    """One input: `key` identifies it, `context` holds its template variables, `references` its texts."""

    key: str
    context: dict
    references: tuple[str, ...]


@dataclass(frozen=True)
class GemSpec:
    name: str
    aliases: tuple[str, ...]
    templates: str
    default_template: str
    target_var: str
    local: dict[str, str]
    read_local: Callable[[Path, str], list[Record]]
    entry: Callable[[dict], Entry]
    hub: str
    hub_config: str | None = None
    carved: bool = False


def _lines(path: Path) -> list[str]:
    return require_file(path, DATA_DIR_HINT).read_text(encoding="utf-8").splitlines()


def read_common_gen(path: Path, split: str) -> list[Record]:
    """CommonGen's line-aligned files `commongen.<split>.src_alpha.txt` (concepts) and `.tgt.txt` (sentences)."""
    stem = {"train": "train", "validation": "dev", "test": "test"}[split]
    concepts, targets = (_lines(path / f"commongen.{stem}.{kind}.txt") for kind in ("src_alpha", "tgt"))
    if len(concepts) != len(targets):
        raise BadRecordError(f"{path}: commongen.{stem}.src_alpha.txt has {len(concepts)} lines but "
                             f".tgt.txt has {len(targets)}")
    return [Record(f"line {n}", {"concepts": c.split(), "target": t})
            for n, (c, t) in enumerate(zip(concepts, targets), start=1)]


def read_csv_file(path: Path, _split: str) -> list[Record]:
    return list(read_records(require_file(path, DATA_DIR_HINT)))


def read_web_nlg(path: Path, _split: str) -> list[Record]:
    """One record per WebNLG entry: {"id", "input": modified triples, "category", "references"}."""
    require_file(path, DATA_DIR_HINT)
    files = [path] if path.is_file() else sorted(path.glob("*triples/*.xml"),
                                                 key=lambda p: (int(p.parent.name.removesuffix("triples")), p.name))
    records = []
    for file in files:
        for entry in ElementTree.parse(file).getroot().iter("entry"):
            triples = [" ".join((t.text or "").split()) for t in entry.iter("mtriple")]
            lexes = [" ".join("".join(lex.itertext()).split()) for lex in entry.iter("lex")]
            data = {"id": f"{file.parent.name}/{file.name}#{entry.get('eid')}", "input": triples,
                    "category": entry.get("category", ""), "references": lexes}
            records.append(Record(f"{file.name} entry {entry.get('eid')}", data))
    return records


def read_xsum(path: Path, _split: str) -> list[Record]:
    """BIG-bench's GEM XSum task file: {"examples": [{"input", "target", "comment"}]}."""
    examples = json.loads(require_file(path, DATA_DIR_HINT).read_text(encoding="utf-8"))["examples"]
    return [Record(f"examples[{i}]", {"document": e.get("input"), "target": e.get("target")})
            for i, e in enumerate(examples)]


def _text(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected non-empty text, got {value!r}")
    return value.strip()


def _references(data: dict, *single: str) -> tuple[str, ...]:
    """`data["references"]` if non-empty, else the first present field of `single`."""
    refs = data.get("references") or [data[key] for key in single if data.get(key)][:1]
    if not refs:
        raise ValueError("no reference text")
    return tuple(_text(ref) for ref in refs)


def common_gen_entry(data: dict) -> Entry:
    concepts = [_text(c) for c in data["concepts"]]
    return Entry(" ".join(concepts), {"concepts": concepts}, _references(data, "target"))


def e2e_entry(data: dict) -> Entry:
    mr = _text(data.get("meaning_representation") or data.get("mr"))
    return Entry(mr, {"meaning_representation": mr}, _references(data, "target", "ref"))


def web_nlg_entry(data: dict) -> Entry:
    triples = [_text(t) for t in data["input"]]
    if not triples:
        raise ValueError("entry has no triples")
    key = data.get("id") or data.get("gem_id") or " ; ".join(triples)  # one example per entry
    return Entry(key, {"input": triples, "category": data.get("category", "")}, _references(data, "target"))


def xsum_entry(data: dict) -> Entry:
    document = _text(data["document"])
    return Entry(document, {"document": document}, _references(data, "target"))


class GemTask(Task):
    """A GEM data-to-text or summarization task scored by BLEU, chrF and ROUGE-1/2/L."""

    family = "gem"
    kind = "generation"
    formulation = "text"
    max_new_tokens = GENERATION_MAX_NEW_TOKENS

    def __init__(self, spec: GemSpec, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                 formulation: str = "label", template: str | None = None, on_bad_record: str = "stop") -> None:
        """`formulation` is accepted for a uniform signature and ignored: generation targets are texts."""
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.on_bad_record = check_policy(on_bad_record)
        self._source = resolve_source(spec.name, source, data_dir, local=list(dict.fromkeys(spec.local.values())),
                                      hub=spec.hub)
        self.source = str(self._source)
        root = data_root(data_dir)
        templates = (root / spec.templates) if root is not None else None
        if templates is None or not templates.exists():
            raise FileNotFoundError(f"{spec.name}: PromptSource templates not found at "
                                    f"{templates or '<data folder>/' + spec.templates}. {DATA_DIR_HINT}")
        self.template = select_template(templates, template or spec.default_template)
        self._carved: tuple[list[Example], list[Example]] | None = None

    def available_splits(self) -> tuple[str, ...]:
        return tuple(self.spec.local) if self._source.kind == "local" else HUB_SPLITS

    def _load(self, split: str) -> list[Example]:
        if self._source.kind == "hub":
            rows = read_hub_split(self.spec.hub, self.spec.hub_config, split)
            return self._examples([Record(f"row {i}", row) for i, row in enumerate(rows)], f"{self.source} {split}",
                                  split)
        path = self._source.path / self.spec.local[split]
        if not self.spec.carved:
            return self._examples(self.spec.read_local(path, split), str(path), split)
        if self._carved is None:
            items = self._examples(self.spec.read_local(path, "test"), str(path), "test")
            self._carved = carve(items, capped_half(len(items), XSUM_POOL))
        return self._carved[0] if split == "train" else self._carved[1]

    def _examples(self, records: list[Record], origin: str, split: str) -> list[Example]:
        """"train": one example per (input, reference) pair; other splits: one per distinct input. Either way
        an example's references are all references of its input (its own target first)."""
        entries = convert_records(records, lambda _, data: self.spec.entry(data), origin=origin,
                                  on_bad_record=self.on_bad_record)
        inputs: dict[str, tuple[dict, list[str]]] = {}
        for entry in entries:
            refs = inputs.setdefault(entry.key, (entry.context, []))[1]
            refs.extend(entry.references)
        prompts = {key: render_prompt_part(self.template, dict(context, references=refs,
                                                               **{self.spec.target_var: refs[0]}))
                   for key, (context, refs) in inputs.items()}
        prefix = f"{self.name}:{self._source.kind}:{split}"
        if split != "train":
            return [Example(f"{prefix}:{n}", prompts[key], refs[0], references=tuple(refs))
                    for n, (key, (_, refs)) in enumerate(inputs.items())]
        pairs = [(entry.key, ref) for entry in entries for ref in entry.references]
        return [Example(f"{prefix}:{n}", prompts[key], ref,
                        references=(ref, *(r for r in inputs[key][1] if r != ref)))
                for n, (key, ref) in enumerate(pairs)]

    def parse(self, response: str, example: Example) -> str | None:
        """The response's first non-empty line, stripped; None when the response is blank."""
        return first_line(response) or None

    def score(self, responses: list[str], examples: list[Example]) -> tuple[dict[str, float], list[dict]]:
        """BLEU, chrF and ROUGE-1/2/L (percent) against all references, see `scoring.score_generation`."""
        return score_generation(self.parse, responses, examples)


SPECS = (
    GemSpec("gem/common_gen", ("commongen",), "promptsource/common_gen/templates.yaml", "Given concepts type 1",
            "target", {s: "gem/common_gen" for s in HUB_SPLITS}, read_common_gen, common_gen_entry, "GEM/common_gen"),
    GemSpec("gem/e2e_nlg", ("e2e", "e2enlg", "e2e_nlg_cleaned"), "promptsource/e2e_nlg_cleaned/templates.yaml",
            "coherent_text", "human_reference",
            {"train": "gem/e2e_nlg/original/trainset.csv", "validation": "gem/e2e_nlg/cleaned/devel-fixed.no-ol.csv",
             "test": "gem/e2e_nlg/cleaned/test-fixed.csv"}, read_csv_file, e2e_entry, "GEM/e2e_nlg"),
    GemSpec("gem/web_nlg", ("webnlg", "web_nlg_en"), "promptsource/GEM/web_nlg/en/templates.yaml",
            "implicit-graph-description", "target",
            {"train": "gem/web_nlg/train", "validation": "gem/web_nlg/dev",
             "test": "gem/web_nlg/test/rdf-to-text-generation-test-data-with-refs-en.xml"},
            read_web_nlg, web_nlg_entry, "GEM/web_nlg", "en"),
    GemSpec("gem/xsum", ("xsum",), "promptsource/GEM/xsum/templates.yaml", "article_DOC_summary", "target",
            {"train": "gem/bigbench_gem/xsum/task.json", "test": "gem/bigbench_gem/xsum/task.json"},
            read_xsum, xsum_entry, "GEM/xsum", carved=True),
)

for _spec in SPECS:
    register_aliases(_spec.name, functools.partial(GemTask, _spec), _spec.aliases)
