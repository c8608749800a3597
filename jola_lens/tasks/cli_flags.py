"""The command-line flags for a user's own data (one argument group shared by train and eval), read back into
a task name and `DataOptions` for `RunSpec.data_options`."""

from __future__ import annotations

import argparse
from typing import Any

from jola_lens.tasks.data_options import FROM_DATA, DataOptions
from jola_lens.tasks.files import BAD_RECORD_POLICIES
from jola_lens.tasks.user_sources import hub_reference

HUB_FLAGS = ("hf_dataset", "hf_config", "hf_split")
OPTION_FLAGS = ("text_field", "label_field", "choices", "label_words", "label_names", "template", "on_bad_record")


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """The "your own data" argument group (every flag defaults to None: not given)."""
    from jola_lens.cli import _flag

    group = parser.add_argument_group(
        "your own data",
        "for --task FILE (.csv .tsv .json .jsonl .parquet), a datasets save_to_disk folder or\n"
        "hf:NAME[:CONFIG][@SPLIT]. The usual shapes need no flag: text/sentence/review/content + label,\n"
        "sentence pairs + label, question/choices/answer, instruction/input/output, prompt/completion, chat\n"
        "messages. A trained run keeps these settings for its evaluation.")
    _flag(group, "text_field", metavar="COLUMN[,COLUMN]", help="the column(s) the model reads")
    _flag(group, "label_field", metavar="COLUMN", help="the column holding the answer")
    _flag(group, "choices", metavar=f"A,B,...|{FROM_DATA}",
          help=f"the answer options, or '{FROM_DATA}' for the distinct answers found; forces classification "
               "(default: classification when the answer takes at most 20 distinct values, each at least twice)")
    _flag(group, "label_words", metavar="VALUE=WORD,...",
          help="the words the model scores for the label values, e.g. 1=positive,0=negative")
    _flag(group, "label_names", metavar="NAME,NAME,...",
          help="names of integer labels 0, 1, ..., e.g. negative,positive (a datasets ClassLabel names them)")
    _flag(group, "template", metavar="FORMAT",
          help="the instruction as a format string over the columns, e.g. 'Review: {text}\\nSentiment:' "
               "(for GEM tasks: a PromptSource template name)")
    _flag(group, "on_bad_record", choices=BAD_RECORD_POLICIES,
          help="error: stop at a bad record, naming its file and row (default); skip: leave bad records out "
               "and count them")
    _flag(group, "hf_dataset", metavar="NAME", help="a hub dataset, instead of --task (as --task hf:NAME)")
    _flag(group, "hf_config", metavar="CONFIG", help="its configuration, e.g. sst2 for nyu-mll/glue")
    _flag(group, "hf_split", metavar="SPLIT",
          help="one split, carved into train/validation/test (default: the dataset's own splits)")


def data_settings(args: argparse.Namespace) -> tuple[str | None, dict[str, Any] | None]:
    """(the task the hub flags name, or None; the data options given, or None when no data flag was given)."""
    given = {name: getattr(args, name, None) for name in OPTION_FLAGS if getattr(args, name, None) is not None}
    task = None
    if getattr(args, "hf_dataset", None):
        task = hub_reference(args.hf_dataset, args.hf_config, args.hf_split)
    else:
        stray = [f"--{name}" for name in HUB_FLAGS[1:] if getattr(args, name, None)]
        if stray:
            raise ValueError(f"{' and '.join(stray)} need --hf_dataset NAME (or --task hf:NAME:CONFIG@SPLIT)")
    return task, DataOptions.parse(**given).to_dict() if given else None
