"""Shared fixtures: tiny random models built from configs (no hub), and the embedded SmolLM2 for slow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("llama", "qwen2", "gpt2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: integration tests on the real SmolLM2 model (deselect with -m 'not slow')")


def build_tiny_model(arch: str, seed: int = 0, vocab_size: int = 128):
    """A 2-layer, 4-head random causal LM of the given family (GQA for llama and qwen2)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=2, n_head=4, n_positions=128))
    else:
        raise ValueError(arch)
    model.config._name_or_path = f"tiny-{arch}"
    return model.eval().requires_grad_(False)


@pytest.fixture(autouse=True)
def restore_task_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test leaves the task registry as it found it: names a test registers are gone after it."""
    from jola_lens.tasks import registry  # importing jola_lens.tasks registers the built-in tasks first

    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "_FULL", dict(registry._FULL))
    monkeypatch.setattr(registry, "_BARE", {key: set(names) for key, names in registry._BARE.items()})


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """A word-level tokenizer over 'w0'..'w124' saved to disk (TransformerLens reloads tokenizers by path)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(125)} | {"<unk>": 125, "<s>": 126, "</s>": 127}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    fast.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture(params=ARCHS)
def tiny_model(request: pytest.FixtureRequest):
    return build_tiny_model(request.param)


@pytest.fixture(scope="session")
def smollm2():
    """The embedded default model and tokenizer (cached as safetensors after the first load)."""
    from jola_lens import load_model

    return load_model()


REQUIRE_DATA = "JOLA_REQUIRE_DATA"
"""Set to 1 (as .ci/run does) and a missing benchmark data folder fails the tests that need it instead of skipping."""


def find_data_dir() -> Path:
    """$JOLA_DATA_DIR, else shared/data beside the checkout; fails (with $JOLA_REQUIRE_DATA=1) or skips when absent."""
    path = Path(os.environ.get("JOLA_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        message = f"benchmark data not found at {path} (set JOLA_DATA_DIR)"
        if os.environ.get(REQUIRE_DATA, "") not in ("", "0"):
            pytest.fail(f"{message}; {REQUIRE_DATA}={os.environ[REQUIRE_DATA]} requires it", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return find_data_dir()
