"""The nnsight route: same logits, generations and training steps as the plain-HF and TransformerLens routes."""

from __future__ import annotations

import copy
import gc
import os
import warnings
import weakref
from types import SimpleNamespace

import nnsight
import pytest
import torch
from conftest import ARCHS, build_tiny_model
from nnsight.modeling.transformers import TransformersModel
from torch.nn import functional as F

from jola_lens import architectures
from jola_lens.architectures import UnsupportedModelError
from jola_lens.backends import hf as hf_backend
from jola_lens.backends import nnsight as nn_backend
from jola_lens.backends import transformer_lens as tl_backend
from jola_lens.edit import EditShapeError, JoLAEdit
from jola_lens.models import boot_bridge

ATOL_LOGITS = 1e-4
ATOL_PARAMS = 1e-5
ROUTES = {"hf": hf_backend, "nnsight": nn_backend, "tl": tl_backend}


def open_edit(model: object, seed: int = 0) -> JoLAEdit:
    """An eval-mode edit with large random vectors; head 0 of each layer open, head 1 closed, the rest random."""
    edit = JoLAEdit.for_model(model, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in edit.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (3.0 if "gate" in name else 0.5))
            if "gate" in name:
                p[:, 0], p[:, 1] = 5.0, -5.0
    return edit.eval()


def token_ids(batch: int = 2, pos: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 120, (batch, pos), generator=torch.Generator().manual_seed(seed))


def right_padded_mask(batch: int = 2, pos: int = 9) -> torch.Tensor:
    mask = torch.ones(batch, pos, dtype=torch.long)
    mask[-1, pos - 3:] = 0
    return mask


def lm_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    keep = mask[:, 1:].flatten().float()
    return (losses * keep).sum() / keep.sum()


def eager(hf_model: torch.nn.Module) -> torch.nn.Module:
    """Eager attention, as a booted TransformerBridge uses: the three routes then agree bit for bit."""
    hf_model.set_attn_implementation("eager")
    return hf_model


def wrap(hf_model: torch.nn.Module, tokenizer) -> TransformersModel:
    """An nnsight model; on a copy of the tokenizer, which nnsight switches to left padding."""
    return TransformersModel(hf_model, tokenizer=copy.deepcopy(tokenizer))


@pytest.fixture(scope="module", params=ARCHS)
def routes(request: pytest.FixtureRequest, tiny_tokenizer) -> SimpleNamespace:
    """Three copies of one tiny model (booting a bridge mutates its HF model): plain HF, nnsight, TransformerLens (tl)."""
    arch = request.param
    return SimpleNamespace(
        arch=arch,
        hf=eager(build_tiny_model(arch)),
        nnsight=wrap(eager(build_tiny_model(arch)), tiny_tokenizer),
        tl=boot_bridge(build_tiny_model(arch), tiny_tokenizer),
    )


def test_forward_equals_hf_and_transformer_lens(routes):
    edit = open_edit(routes.hf)
    ids, mask = token_ids(), right_padded_mask()
    logits = {name: backend.forward(getattr(routes, name), edit, ids, mask) for name, backend in ROUTES.items()}
    keep = mask.bool()
    for name in ("hf", "tl"):
        torch.testing.assert_close(logits["nnsight"][keep], logits[name][keep], atol=ATOL_LOGITS, rtol=0)
    unedited = routes.hf(ids, attention_mask=mask).logits
    assert (logits["nnsight"] - unedited)[keep].abs().max() > 1e-2  # the edit does something


def test_forward_keeps_plain_positions_for_left_padding(routes):
    edit = open_edit(routes.hf)
    ids, mask = token_ids(), right_padded_mask().flip(-1)
    assert routes.nnsight.tokenizer.padding_side == "left"  # nnsight's choice: it would renumber these rows
    logits = nn_backend.forward(routes.nnsight, edit, ids, mask)
    expected = hf_backend.forward(routes.hf, edit, ids, mask)
    torch.testing.assert_close(logits[mask.bool()], expected[mask.bool()], atol=ATOL_LOGITS, rtol=0)


def test_greedy_generation_equals_hf(routes):
    edit = open_edit(routes.hf)
    ids = token_ids(pos=5)
    settings = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": routes.hf.config.eos_token_id}
    with edit.attached(routes.hf):
        expected = routes.hf.generate(ids, attention_mask=torch.ones_like(ids), **settings)
    model = routes.nnsight
    with edit.attached(model), model.generate(ids, **settings) as tracer:
        attached = tracer.result.save()
    assert not model._edits  # detached again
    with model.generate(**settings) as tracer:
        with tracer.invoke(ids):
            nn_backend.apply_edit_every_step(model, edit)
        with tracer.invoke():
            every_step = tracer.result.save()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was never reached")  # how nnsight ends an open loop
        with model.generate(**settings) as tracer:
            with tracer.invoke(ids):
                for _ in tracer.all():
                    nn_backend.apply_edit(model, edit)
            with tracer.invoke():
                user_loop = tracer.result.save()
    unedited = routes.hf.generate(ids, attention_mask=torch.ones_like(ids), **settings)
    assert not torch.equal(expected, unedited)
    for tokens in (attached, every_step, user_loop):
        assert torch.equal(tokens, expected)


def test_adam_steps_equal_on_every_route(routes):
    start = open_edit(routes.hf)
    ids, mask = token_ids(seed=1), right_padded_mask()
    trained = {}
    for name, backend in ROUTES.items():
        edit = copy.deepcopy(start)
        optimizer = torch.optim.Adam(edit.parameters(), lr=1e-2)
        for _ in range(3):
            optimizer.zero_grad()
            lm_loss(backend.forward(getattr(routes, name), edit, ids, mask), ids, mask).backward()
            optimizer.step()
        trained[name] = edit.state_dict()
    assert not torch.equal(trained["nnsight"]["additive"], start.additive)
    for key, value in trained["nnsight"].items():
        for name in ("hf", "tl"):
            torch.testing.assert_close(value, trained[name][key], atol=ATOL_PARAMS, rtol=0)


def test_edited_z_and_gates_saved_in_a_trace_equal_hf_route(routes):
    edit = open_edit(routes.hf)
    ids = token_ids()
    sites = architectures.find_head_sites(routes.hf)
    seen = {}
    with edit.attached(routes.hf):  # register after the edit's hooks, so these see the edited input
        hooks = [proj.register_forward_pre_hook(lambda m, args, layer=layer: seen.__setitem__(layer, args[0]))
                 for layer, proj in enumerate(sites.out_projs)]
        expected_logits = routes.hf(ids).logits
        for hook in hooks:
            hook.remove()
    model = routes.nnsight
    with model.trace(ids):
        zs = nnsight.save(nn_backend.apply_edit(model, edit))
        gates = nnsight.save(edit.gates())
        logits = model.output.logits.save()
    for layer, z in zs.items():
        assert z.shape == (2, 9, sites.n_heads, sites.d_head)
        torch.testing.assert_close(z.flatten(-2), seen[layer], atol=1e-6, rtol=0)
    torch.testing.assert_close(gates["additive"][:, 0], torch.ones(sites.n_layers))
    torch.testing.assert_close(gates["additive"][:, 1], torch.zeros(sites.n_layers))
    torch.testing.assert_close(logits, expected_logits, atol=ATOL_LOGITS, rtol=0)


def test_loss_computed_inside_user_trace_trains_the_edit(routes):
    model, edit = routes.nnsight, JoLAEdit.for_model(routes.hf, seed=0).train()  # sampled gates
    ids = token_ids()
    torch.manual_seed(0)
    with model.trace(ids):
        nn_backend.apply_edit(model, edit)
        hidden = model.get("lm_head").input.save()  # any later module is still readable
        loss = F.cross_entropy(model.output.logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).save()
    assert hidden.shape == (2, 9, 64) and hidden.requires_grad
    loss.backward()
    for name, p in edit.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_apply_edit_in_one_invoke_edits_only_its_rows(routes):
    model, edit = routes.nnsight, open_edit(routes.hf)
    ids = token_ids()
    with model.trace() as tracer:
        with tracer.invoke(ids[:1]):
            clean = model.output.logits.save()
        with tracer.invoke(ids[1:]):
            nn_backend.apply_edit(model, edit)
            edited = model.output.logits.save()
    torch.testing.assert_close(clean, routes.hf(ids[:1]).logits, atol=ATOL_LOGITS, rtol=0)
    torch.testing.assert_close(edited, hf_backend.forward(routes.hf, edit, ids[1:]), atol=ATOL_LOGITS, rtol=0)


def test_attach_applies_to_traces_until_removed(routes):
    model, edit = routes.nnsight, open_edit(routes.hf)
    ids = token_ids()
    attachment = edit.attach(model)
    assert attachment.backend == "nnsight" and attachment.active
    with model.trace(ids):
        attached = model.output.logits.save()
    attachment.remove()
    with model.trace(ids):
        bare = model.output.logits.save()
    torch.testing.assert_close(attached, hf_backend.forward(routes.hf, edit, ids), atol=ATOL_LOGITS, rtol=0)
    torch.testing.assert_close(bare, routes.hf(ids).logits, atol=ATOL_LOGITS, rtol=0)
    assert not attachment.active and not model._edits


def test_unmapped_model_gets_a_clear_error(tiny_tokenizer, monkeypatch):
    model = wrap(build_tiny_model("llama"), tiny_tokenizer)
    edit = open_edit(build_tiny_model("llama"))
    monkeypatch.delitem(architectures.ARCHITECTURES, "llama")
    for call in (lambda: edit.attach(model), lambda: nn_backend.forward(model, edit, token_ids())):
        with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM.*register_architecture"):
            call()
    with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM"), model.trace(token_ids()):
        nn_backend.apply_edit(model, edit)


def test_edit_for_another_model_gets_the_shape_error(tiny_tokenizer):
    model = wrap(build_tiny_model("llama"), tiny_tokenizer)
    edit = JoLAEdit(JoLAEdit.for_model(model).config.replace(n_layers=3))
    with pytest.raises(EditShapeError, match=r"TransformersModel wrapping LlamaForCausalLM has \(2, 4, 16\)"):
        edit.attach(model)
    with pytest.raises(EditShapeError):
        nn_backend.forward(model, edit, token_ids())
    with pytest.raises(TypeError, match="nnsight model"):
        nn_backend.forward(build_tiny_model("llama"), edit, token_ids())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_traced_training_does_not_leak(tiny_tokenizer):
    model = wrap(build_tiny_model("llama"), tiny_tokenizer)
    edit = open_edit(model).train()
    optimizer = torch.optim.Adam(edit.parameters(), lr=1e-3)
    ids, mask = token_ids(batch=4, pos=32), torch.ones(4, 32, dtype=torch.long)
    freed = []

    def step() -> None:
        optimizer.zero_grad()
        logits = nn_backend.forward(model, edit, ids, mask)
        lm_loss(logits, ids, mask).backward()
        optimizer.step()
        freed.append(weakref.ref(logits))

    for _ in range(5):
        step()
    gc.collect()
    before = _rss_bytes()
    for _ in range(50):
        step()
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 50 * 2**20, f"RSS grew {growth / 2**20:.1f} MB over 50 traced steps"
    assert all(ref() is None for ref in freed), "traced logits outlived their step"
    assert not model._edits and not model.interleaver.mediators


@pytest.mark.slow
def test_smollm2_routes_agree(smollm2):
    hf_model, tokenizer = smollm2
    hf_model = eager(copy.deepcopy(hf_model))  # the session fixture stays untouched
    model = wrap(copy.deepcopy(hf_model), tokenizer)
    bridge = boot_bridge(copy.deepcopy(hf_model), tokenizer)
    edit = open_edit(hf_model)
    batch = tokenizer(["The capital of France is", "JoLA edits attention heads by"], return_tensors="pt",
                      padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    keep = mask.bool()
    expected = hf_backend.forward(hf_model, edit, ids, mask)
    for logits in (nn_backend.forward(model, edit, ids, mask), tl_backend.forward(bridge, edit, ids, mask)):
        torch.testing.assert_close(logits[keep], expected[keep], atol=ATOL_LOGITS, rtol=0)

    prompt = ids[:1, : int(mask[0].sum())]
    settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with edit.attached(hf_model):
        hf_tokens = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), **settings)
    with edit.attached(model), model.generate(prompt, **settings) as tracer:
        nn_tokens = tracer.result.save()
    assert torch.equal(nn_tokens, hf_tokens)

    trained = {}
    for name, route_model in (("hf", hf_model), ("nnsight", model), ("tl", bridge)):
        trained_edit = copy.deepcopy(edit)
        optimizer = torch.optim.Adam(trained_edit.parameters(), lr=1e-2)
        for _ in range(3):
            optimizer.zero_grad()
            logits = ROUTES[name].forward(route_model, trained_edit, ids, mask)
            lm_loss(logits, ids, mask).backward()
            optimizer.step()
        trained[name] = trained_edit.state_dict()
    for key, value in trained["nnsight"].items():
        for name in ("hf", "tl"):
            torch.testing.assert_close(value, trained[name][key], atol=ATOL_PARAMS, rtol=0)
