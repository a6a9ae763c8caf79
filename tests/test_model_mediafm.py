"""The MediaFM model: shapes, masks, padding, window stitching, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mediafm.errors import ConfigError
from mediafm.model import (PRESETS, MediaFM, ModelConfig, load_pretrained, msm_loss, save_pretrained, small, tiny, train_flops,
                           window_plan)
from mediafm.training.pretrain import TrainConfig

torch.set_num_threads(1)


# The bare encoder these tests probe: the last hidden state out, no neighbour heads, no distance
# bias unless a test asks for it (the product's defaults add all three).
PLAIN = dict(objective="cosine", neighbor_weight=0.0, distance_bias=False, readout="hidden")


def _model(**kw) -> MediaFM:
    torch.manual_seed(0)
    return MediaFM(tiny(24, 8, **{**PLAIN, **kw})).eval()


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_and_runs(preset):
    torch.manual_seed(0)
    m = MediaFM(PRESETS[preset](24, 8, max_shots=16, **PLAIN)).eval()
    x = _unit(torch.randn(2, 5, 24))
    pad = torch.ones(2, 5, dtype=torch.bool)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, 1] = True
    pred, loss = m(x, _unit(torch.randn(2, 8)), pad, mask)
    assert pred.shape == (2, 5, 24)
    assert torch.isfinite(pred).all() and 0 <= float(loss.detach()) <= 2
    assert m(x, None, pad)[1] is None  # no masked shots -> no loss


def test_base_is_bert_base_sized():
    cfg = PRESETS["base"](2048, 384)
    assert (cfg.hidden, cfg.n_layers, cfg.n_heads) == (768, 12, 12)
    n = MediaFM(cfg).num_params()
    assert 80e6 < n < 100e6, n


def test_only_masked_positions_carry_loss():
    m = _model()
    x = _unit(torch.randn(1, 12, 24))
    pad = torch.ones(1, 12, dtype=torch.bool)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, [2, 7]] = True
    pred, loss = m(x, None, pad, mask)
    pred = pred.detach().requires_grad_()
    msm_loss(pred, x, mask).backward()
    rows_with_grad = pred.grad[0].abs().sum(-1) > 0
    assert rows_with_grad.tolist() == mask[0].tolist()
    # the model never sees a masked shot's own vector: changing it leaves every prediction unchanged
    x2 = x.clone()
    x2[0, 7] = _unit(torch.randn(24))
    pred2, loss2 = m(x2, None, pad, mask)
    assert torch.allclose(pred2, pred, atol=1e-6)
    assert not torch.isclose(loss2, loss)  # ... but the target (and so the loss) changed


@pytest.mark.parametrize("distance_bias", [False, True])
def test_padding_never_changes_real_outputs(distance_bias):
    m = _model(distance_bias=distance_bias)
    a = _unit(torch.randn(1, 7, 24))
    b = _unit(torch.randn(1, 13, 24))
    alone, _ = m(a, None, torch.ones(1, 7, dtype=torch.bool))
    padded = torch.cat([a, 100 * torch.randn(1, 6, 24)], 1)  # garbage in the padding
    batch = torch.cat([padded, b])
    pad = torch.ones(2, 13, dtype=torch.bool)
    pad[0, 7:] = False
    mask = torch.zeros(2, 13, dtype=torch.bool)
    mask[0, 9] = True  # a mask on padding must carry no loss either
    both, loss = m(batch, None, pad, mask)
    assert torch.allclose(both[0, :7], alone[0], atol=1e-5)
    assert float(loss.detach()) == 0.0


def test_distance_bias_lowers_far_shots_per_head_and_spares_the_special_tokens():
    from mediafm.model import distance_bias

    b = distance_bias(5, 2)
    assert b.shape == (2, 7, 7)
    assert torch.all(b[:, :2, :] == 0) and torch.all(b[:, :, :2] == 0)  # [CLS], [GLOBAL] see and are seen alike
    assert float(b[0, 2, 3]) == -0.25 and float(b[0, 2, 6]) == -1.0 and float(b[1, 2, 6]) == -0.25
    # With the bias a far shot sways a shot's output less than a near one does.
    m = _model(distance_bias=True, max_shots=64)
    x = _unit(torch.randn(1, 64, 24))
    base, _ = m(x, None, None)
    near, far = x.clone(), x.clone()
    near[0, 31], far[0, 63] = _unit(torch.randn(24)), _unit(torch.randn(24))
    d_near = (m(near, None, None)[0][0, 30] - base[0, 30]).norm()
    d_far = (m(far, None, None)[0][0, 30] - base[0, 30]).norm()
    assert d_far < d_near


def test_metadata_changes_output_and_zero_row_means_absent():
    m = _model()
    x = _unit(torch.randn(1, 6, 24))
    pad = torch.ones(1, 6, dtype=torch.bool)
    none, _ = m(x, None, pad)
    zero, _ = m(x, torch.zeros(1, 8), pad)
    meta, _ = m(x, _unit(torch.randn(1, 8)), pad)
    assert torch.allclose(none, zero)
    assert not torch.allclose(none, meta, atol=1e-4)


def test_window_plan_covers_each_shot_from_its_most_central_window():
    starts, owner = window_plan(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    for i, w in enumerate(owner):
        s = starts[w]
        assert s <= i < s + 32
        margin = min(i - s, s + 31 - i)
        # at least (window - stride) / 2 shots of context each side, unless the title ends first
        assert margin >= min(12, i, 99 - i)


def test_stitched_rows_equal_their_window_forward():
    m = _model(max_shots=16)
    x = np.asarray(_unit(torch.randn(50, 24)))
    emb = m.embed_title(x, stride=4)
    starts, owner = window_plan(50, 16, 4)
    for i in (0, 9, 25, 49):
        s = starts[owner[i]]
        h = m.encode(torch.as_tensor(x[None, s:s + 16]), None, torch.ones(1, 16, dtype=torch.bool))
        assert np.allclose(emb[i], h[0, 2 + i - s].detach().numpy(), atol=1e-5)


def test_embedding_does_not_depend_on_window_offset():
    """With per-shot centred windows (stride=1) a shot's embedding depends only on its
    neighbourhood, not on where the title (and so any window grid) starts."""
    m = _model(max_shots=16)
    x = np.asarray(_unit(torch.randn(60, 24)))
    full = m.embed_title(x, stride=1)
    for offset in (3, 11):
        shifted = m.embed_title(x[offset:], stride=1)
        # shots with a full centred window in both titles
        for i in range(offset + 8, 60 - 8):
            assert np.allclose(full[i], shifted[i - offset], atol=1e-5), (offset, i)
    # default stride: same shot, windows on a grid shifted by a multiple of the stride -> same output
    a = m.embed_title(x)
    b = m.embed_title(x[8:])
    assert np.allclose(a[20:40], b[12:32], atol=1e-5)


def test_embed_title_short_title_is_one_forward_and_returns_cls():
    m = _model()
    x = np.asarray(_unit(torch.randn(9, 24)))
    meta = np.asarray(_unit(torch.randn(8)))
    emb, cls = m.embed_title(x, meta, return_cls=True)
    h = m.encode(torch.as_tensor(x[None]), torch.as_tensor(meta[None]), torch.ones(1, 9, dtype=torch.bool))
    assert emb.shape == (9, 64) and cls.shape == (64,)
    assert np.allclose(emb, h[0, 2:].detach().numpy(), atol=1e-6)
    assert np.allclose(cls, h[0, 0].detach().numpy(), atol=1e-6)


def test_save_load_roundtrip_is_exact(tmp_path):
    m = _model()
    save_pretrained(m, tmp_path)
    m2 = load_pretrained(tmp_path)
    assert m2.config == m.config
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_load_pretrained_names_the_missing_dir(tmp_path):
    from mediafm.errors import StoreError
    with pytest.raises(StoreError, match=str(tmp_path)):
        load_pretrained(tmp_path)


def test_a_config_saved_with_the_old_defaults_loads_to_the_same_model(tmp_path):
    import json

    # config.json of a model folder written before the lever table set the defaults: every field
    # explicit, with the values ModelConfig had then
    old = {"input_dim": 24, "meta_dim": 8, "hidden": 64, "n_layers": 2, "n_heads": 4, "mlp_ratio": 4,
           "max_shots": 512, "dropout": 0.0, "time_features": False, "objective": "cosine", "temperature": 0.1,
           "neighbor_weight": 0.0, "readout": "hidden", "distance_bias": False, "name": "mediafm-tiny"}
    m = _model(max_shots=512)
    added = {"modality_dropout": 0.0, "modality_dims": (), "boundary_weight": 0.0}  # fields since, off by default
    assert m.config.to_dict() == {**old, **added}
    save_pretrained(m, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model"] == {**old, **added, "modality_dims": []}
    assert ModelConfig.from_dict(old) == m.config
    loaded = load_pretrained(tmp_path)
    assert loaded.config == m.config and loaded.next_proj is None and loaded.config.embed_dim == 64
    # older still: fields added since are absent and mean what they meant before they existed
    before = {k: v for k, v in old.items() if k not in ("objective", "neighbor_weight", "readout", "distance_bias")}
    assert ModelConfig.from_dict(before) == m.config
    x = np.asarray(_unit(torch.randn(9, 24)))
    assert np.array_equal(loaded.embed_title(x), m.embed_title(x))


def test_the_default_model_is_the_product_model():
    cfg = small(24)
    assert (cfg.objective, cfg.neighbor_weight, cfg.distance_bias, cfg.readout) == ("both", 0.5, True, "stack+title+input")
    assert cfg.choices() == TrainConfig().model.choices()


def test_unknown_names_and_sizes_are_config_errors():
    for kw in ({"objective": "huber"}, {"readout": "cls"}, {"hidden": 30}, {"max_shots": 1}):
        with pytest.raises(ConfigError):
            ModelConfig(**kw)
    with pytest.raises(ValueError):  # ConfigError is a ValueError: older callers' handlers still hold
        tiny(24, readout="cls")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        TrainConfig(preset="huge").validate()
    with pytest.raises(ConfigError, match="model.hidden"):
        TrainConfig(model=ModelConfig(hidden=256)).validate()


@pytest.mark.parametrize("neighbor", [0.0, 0.5])
def test_train_flops_counts_the_products_a_training_step_runs(neighbor):
    """torch's FlopCounterMode over a real step (rows-only heads) against `train_flops`. The counter
    does not count the CPU attention kernel (our attention term is added to it), and counts the
    neighbour losses' query x candidate products, which are loss, not model, FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = tiny(256, 0, objective="cosine", neighbor_weight=neighbor, distance_bias=False, max_shots=64)
    model = MediaFM(cfg)
    B, N, h = 2, 40, cfg.hidden
    x = torch.randn(B, N, 256)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[:, ::5] = True  # 20%
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, None, None, mask, predict_all=False)
        loss.backward()
    attention = 12 * cfg.n_layers * h * (N + 2) ** 2 * B
    queries = (N - 1) * B  # each neighbour head: every shot with a neighbour (fewer than MAX_QUERIES)
    # q @ cand.T of both heads: forward and the gradient of q, 2 FLOPs per multiply-add
    loss_products = 2 * 2 * 2 * queries * cfg.input_dim * (N * B) if neighbor else 0
    assert counter.get_total_flops() + attention - loss_products == pytest.approx(train_flops(cfg, N, 0.2, B) * B, rel=1e-6)


def _padded_batch(bias: bool, holes: bool = False):
    """A `tiny` model and a batch of 3 windows of 12, 20 and 5 real shots (padding at the end of
    each row; with `holes`, a padded shot between real ones): (model, x, times, meta, pad, mask, keep)."""
    torch.manual_seed(0)
    model = MediaFM(tiny(24, 8, max_shots=32, distance_bias=bias, time_features=True))
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(3, 20, 24, generator=g), dim=-1)
    times = torch.rand(3, 20, 2, generator=g) * 100
    meta = torch.randn(3, 8, generator=g)
    pad = torch.ones(3, 20, dtype=torch.bool)
    pad[0, 12:] = False
    pad[2, 5:] = False
    if holes:  # a padded shot between real ones: positions keep their distances, so no per-window path
        pad[1, 7] = False
    mask = (torch.rand(3, 20, generator=g) < 0.3) & pad
    keep = mask & (torch.rand(3, 20, generator=g) < 0.3)  # masked shots whose input stays visible
    return model, x, times, meta, pad, mask, keep


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("holes", [False, True])
def test_padded_batches_give_the_real_shots_the_same_outputs_and_gradients(bias, holes):
    """On a CPU the blocks run on the real tokens only (attention window by window when every
    window's real shots come first, else unpacked around its kernel); a window's outputs, the loss
    and the gradients match running it with its padding through every product, and running it alone."""
    model, x, times, meta, pad, mask, keep = _padded_batch(bias, holes)
    grads, losses, outs = [], [], []
    for packed in (True, False):
        model.zero_grad()
        if not packed:  # the padded path: what a GPU runs
            real_all = pad.all
            pad.all = lambda: torch.tensor(True)  # noqa: B023 - makes encode skip packing
        out = model.encode(x, meta, pad, mask, times, keep)
        torch.manual_seed(5)
        _, loss = model(x, meta, pad, mask, times, keep, predict_all=False)
        loss.backward()
        if not packed:
            pad.all = real_all
        outs.append(out.detach())
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    real = torch.cat([torch.ones(3, 2, dtype=torch.bool), pad], 1)
    assert torch.allclose(outs[0][real], outs[1][real], atol=1e-5)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for name in grads[1]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name
    alone = model.encode(x[2:, :5], meta[2:], None, mask[2:, :5], times[2:, :5], keep[2:, :5])
    assert torch.allclose(outs[0][2, :7], alone[0], atol=1e-5)


def test_windows_of_a_batch_attend_by_window_only_when_their_real_shots_come_first(monkeypatch):
    from mediafm.model import transformer as tr

    seen = []
    real_by_window = tr.SelfAttention._by_window
    monkeypatch.setattr(tr.SelfAttention, "_by_window", lambda self, qkv, bias, spans, *a: seen.append(spans)
                        or real_by_window(self, qkv, bias, spans, *a))
    model = MediaFM(tiny(8, 0, max_shots=16))
    x = torch.nn.functional.normalize(torch.randn(2, 6, 8), dim=-1)
    pad = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    model.encode(x, None, pad)
    assert seen and seen[0] == (6, 8)  # [CLS] and [GLOBAL] + the real shots of each window
    seen.clear()
    model.encode(x, None, torch.tensor([[1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool))
    assert not seen


@pytest.mark.parametrize("bias", [True, False])
def test_shape_buckets_under_cpu_bf16_give_what_the_batch_sizes_give(bias, monkeypatch):
    """Under CPU bf16 autocast the packed rows, the input projection's and the heads' rows and each
    window's attention run at bucketed sizes (SHAPE_BUCKETS: oneDNN compiles kernels per shape);
    the padded rows and keys change nothing: outputs, loss and gradients match the batch's own
    sizes to bf16 rounding (float32 gradients of a bf16 step differ by about 1e-3 between runs
    of differently blocked products)."""
    from mediafm.model import transformer as tr

    seen = []
    real_by_window = tr.SelfAttention._by_window
    monkeypatch.setattr(tr.SelfAttention, "_by_window", lambda self, qkv, b, spans, attend, tail: seen.append(
        (tail, attend, len(qkv))) or real_by_window(self, qkv, b, spans, attend, tail))
    model, x, times, meta, pad, mask, _ = _padded_batch(bias)
    runs = []
    for buckets in (True, False):
        monkeypatch.setattr(tr, "SHAPE_BUCKETS", buckets)
        model.zero_grad()
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model.encode(x, meta, pad, mask, times)
            torch.manual_seed(5)
            _, loss = model(x, meta, pad, mask, times, predict_all=False)
        loss.backward()
        tails = {t for t, _, _ in seen}
        assert tails == ({128 - 43} if buckets else {0})  # 14 + 22 + 7 tokens in 128 rows
        assert {a for _, a, _ in seen} == ({(16, 32, 16)} if buckets else {None})
        runs.append((out.detach().float(), loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                                          if p.grad is not None}))
    real = torch.cat([torch.ones(3, 2, dtype=torch.bool), pad], 1)
    (out_b, loss_b, grads_b), (out_p, loss_p, grads_p) = runs
    assert torch.allclose(out_b[real], out_p[real], atol=2e-2)
    assert torch.allclose(loss_b, loss_p, rtol=1e-2)
    assert grads_b.keys() == grads_p.keys()
    for name in grads_p:
        scale = grads_p[name].abs().max().clamp(min=1e-6)
        assert (grads_b[name] - grads_p[name]).abs().max() <= 2e-2 * scale, name
