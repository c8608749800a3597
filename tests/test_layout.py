"""Where concepts live: routes in backends/ (one name per route), training and evaluation apart."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from jola_lens import backends
from jola_lens.backends.route import ROUTES, Route, make_route


def _loaded_by(module: str) -> set[str]:
    """The jola_lens.training / jola_lens.evaluation modules a fresh interpreter holds after importing ``module``."""
    code = (f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith(('jola_lens.training', 'jola_lens.evaluation')))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return set(done.stdout.split())


def test_training_and_evaluation_do_not_import_each_other():
    assert _loaded_by("jola_lens.evaluation") == {"jola_lens.evaluation"}
    assert not {m for m in _loaded_by("jola_lens.training") if m.startswith("jola_lens.evaluation")}
    assert _loaded_by("jola_lens.backends.route") == set()


def test_one_name_per_route_everywhere():
    from jola_lens.cli import build_parser
    from jola_lens.training.pipeline import RunSpec

    assert ROUTES == backends.ROUTES == ("hf", "tl", "nnsight")
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("train", "eval"):
        (flag,) = [a for a in subparsers[command]._actions if a.dest == "backend"]
        assert tuple(flag.choices) == ROUTES
    with pytest.raises(ValueError, match=r"unknown backend 'transformer_lens'; choose one of \('hf', 'tl', 'nnsight'\)"):
        RunSpec(backend="transformer_lens")
    with pytest.raises(ValueError, match=r"unknown route 'transformer_lens'; choose one of \('hf', 'tl', 'nnsight'\)"):
        make_route("transformer_lens", None, None)


@pytest.mark.parametrize("name", ROUTES)
def test_make_route_names_its_route(name, tiny_tokenizer):
    from conftest import build_tiny_model

    model = build_tiny_model("llama")
    route = make_route(name, model, tiny_tokenizer)
    assert isinstance(route, Route) and route.name == name and route.hf_model is model
    assert backends.backend_name(route.model) == name
