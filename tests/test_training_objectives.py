"""Objectives, masking modes, read-outs and the auto schedule of masked-shot pretraining."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import torch

from mediafm.cli.main import main
from mediafm.errors import ConfigError
from mediafm.model import MediaFM, ModelConfig, load_pretrained, tiny
from mediafm.model.transformer import OBJECTIVES, READOUTS, contrastive_loss
from mediafm.training.data import MaskSpec, Window, build_cache, iter_batches, mask_for, split_titles
from mediafm.training.embed import embed_store, model_identity
from mediafm.training.pretrain import TrainConfig, plan_schedule, pretrain
from mediafm_testing.synthetic import SyntheticConfig, structured_store

torch.set_num_threads(1)


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_is_carried_by_masked_real_positions_only(objective):
    torch.manual_seed(0)
    m = MediaFM(tiny(24, 0, objective=objective, neighbor_weight=0.0, distance_bias=False)).eval()
    x = _unit(torch.randn(2, 10, 24))
    pad = torch.ones(2, 10, dtype=torch.bool)
    pad[1, 7:] = False
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, [1, 5]] = True
    mask[1, [2, 8]] = True  # 8 is padding: no loss there
    pred, loss = m(x, None, pad, mask)
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    pred = pred.detach().requires_grad_()
    fn = {"cosine": lambda p: torch.nn.functional.cosine_similarity(p, x, dim=-1)[mask & pad].sum(),
          "contrastive": lambda p: contrastive_loss(p, x, mask & pad, pad, 0.1),
          "both": lambda p: contrastive_loss(p, x, mask & pad, pad, 0.1)}[objective]
    fn(pred).backward()
    rows = pred.grad.abs().sum(-1) > 0
    assert rows.tolist() == (mask & pad).tolist()


def test_contrastive_loss_ignores_padding_candidates_and_is_minimal_for_the_true_shot():
    x = _unit(torch.randn(1, 6, 16))
    pad = torch.ones(1, 6, dtype=torch.bool)
    mask = torch.zeros(1, 6, dtype=torch.bool)
    mask[0, 2] = True
    exact = contrastive_loss(x.clone(), x, mask, pad, 0.05)
    wrong = contrastive_loss(x[:, [3, 3, 3, 3, 3, 3]], x, mask, pad, 0.05)
    assert float(exact) < 0.05 < float(wrong)
    garbage = torch.cat([x, x[:, 2:3].expand(1, 4, 16)], 1)  # padding rows identical to the target
    pad2 = torch.cat([pad, torch.zeros(1, 4, dtype=torch.bool)], 1)
    mask2 = torch.cat([mask, torch.zeros(1, 4, dtype=torch.bool)], 1)
    assert torch.isclose(contrastive_loss(garbage, garbage, mask2, pad2, 0.05), exact, atol=1e-5)


def test_contrastive_loss_falls_on_a_learnable_toy():
    # Shots of a title repeat a 3-shot motif; a masked shot is recoverable from its period-3 neighbours.
    torch.manual_seed(0)
    protos = _unit(torch.randn(16, 3, 24))
    x = protos.repeat(1, 4, 1) + 0.05 * torch.randn(16, 12, 24)
    x = _unit(x)
    pad = torch.ones(16, 12, dtype=torch.bool)
    m = MediaFM(tiny(24, 0, objective="contrastive", max_shots=16, neighbor_weight=0.0, distance_bias=False))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(120):
        mask = torch.rand(16, 12, generator=g) < 0.2
        mask[:, 0] = True
        _, loss = m(x, None, pad, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.5 * first, (first, last)


@pytest.mark.parametrize("readout", READOUTS)
def test_every_readout_has_its_declared_dim_and_input_joins_the_shot(readout):
    torch.manual_seed(0)
    cfg = tiny(24, 8, readout=readout, max_shots=8)
    m = MediaFM(cfg).eval()
    x = _unit(torch.randn(20, 24)).numpy()
    out = m.embed_title(x, stride=4)
    assert out.shape == (20, cfg.embed_dim) and np.isfinite(out).all()
    if readout.endswith("+input"):
        # the first 24 columns are the shot's own unit input, scaled so the joined vector has norm 1
        assert np.allclose(out[:, :24] * 2 ** 0.5, x, atol=1e-5)
        assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_span_masks_come_in_runs_and_keep_the_ratio():
    w = Window(0, 0, 200)
    single, _, _ = mask_for(w, MaskSpec(0.2, span=1.0), 0, 3)
    spans, _, _ = mask_for(w, MaskSpec(0.2, span=6.0), 0, 3)

    def runs(m):
        return int(np.sum(np.diff(np.r_[0, m.astype(int)]) == 1))
    assert single.sum() == spans.sum() == 40
    assert runs(spans) < runs(single) / 2


def test_keep_and_random_shares_apply_to_training_only():
    w = Window(1, 0, 1000)
    spec = MaskSpec(0.5, keep=0.2, random=0.3)
    m, kept, swapped = mask_for(w, spec, 0, 0)
    assert not (kept & swapped).any() and (kept <= m).all() and (swapped <= m).all()
    assert 0.15 < kept.sum() / m.sum() < 0.25 and 0.25 < swapped.sum() / m.sum() < 0.35
    _, kept_v, swapped_v = mask_for(w, spec, 0, -1)  # validation
    assert not kept_v.any() and not swapped_v.any()


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    structured_store(root, SyntheticConfig(n_titles=10, dim=16, meta_dim=8, shots_per_title=(20, 40), seed=5))
    return root


def test_swapped_inputs_show_another_shot_while_targets_stay_true(store_root):
    cache = build_cache(store_root)
    tr, _ = split_titles(cache.title_ids, 0.2, 0)
    spec = MaskSpec(0.5, keep=0.0, random=1.0)
    b = next(iter_batches(cache, tr, 64, 4, 0, 0, spec))
    assert b.targets is not None
    changed = (b.fused != b.targets).any(-1)
    assert changed.any() and (changed <= b.mask_positions).all()
    for j in range(4):
        n = int(b.pad_mask[j].sum())
        for i in torch.nonzero(changed[j]).flatten().tolist():
            # the shown vector is one of the window's true shots
            assert (b.targets[j, :n] == b.fused[j, i]).all(-1).any()


def test_auto_schedule_adapts_to_small_catalogs_and_scales_with_data():
    cfg = TrainConfig()
    tiny_plan = plan_schedule(cfg, n_windows=1, n_titles=1)
    assert tiny_plan.batch_size == 1 and tiny_plan.total_steps == cfg.min_steps
    assert "auto" in tiny_plan.note and "batch 1" in tiny_plan.note
    big = plan_schedule(cfg, n_windows=16_000, n_titles=10_000)
    assert big.batch_size == 16 and big.total_steps == cfg.max_auto_steps and big.val_every == 2500
    mid = plan_schedule(cfg, n_windows=180, n_titles=180)
    assert mid.total_steps == cfg.auto_epochs * 11 and mid.val_every == mid.total_steps // 20
    assert plan_schedule(dataclasses.replace(cfg, max_steps=50), 100, 100).total_steps == 50
    assert plan_schedule(dataclasses.replace(cfg, epochs=2), 160, 160).total_steps == 20
    with pytest.raises(ConfigError, match="lower --batch-size"):
        plan_schedule(dataclasses.replace(cfg, batch_size=16), 3, 3)
    assert plan_schedule(cfg, n_windows=7, n_titles=7, world=2).batch_size == 6


def test_two_title_store_pretrains_with_no_flags_and_embeds_the_chosen_readout(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mediafm.training.pretrain")  # as `mediafm` sets it for its users
    structured_store(tmp_path / "s", SyntheticConfig(n_titles=2, dim=16, meta_dim=8, shots_per_title=(20, 30), meta_fraction=1.0, seed=2))
    rc = main(["pretrain", str(tmp_path / "s"), "--out", str(tmp_path / "m"), "--preset", "tiny",
               "--min-steps", "30", "--readout", "hidden+input", "--objective", "both", "--threads", "1"])
    assert rc == 0
    assert "auto: batch 1" in caplog.text  # the schedule note, logged at INFO
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["embedding"] == {"readout": "hidden+input", "dim": 64 + 16, "objective": "both", "metadata": True}
    assert "read-out `hidden+input`" in (tmp_path / "m" / "MODEL_CARD.md").read_text()
    res = embed_store(tmp_path / "s", tmp_path / "m")
    info = model_identity(tmp_path / "m")
    assert info["model_id"].endswith("-hidden-input") and info["dim"] == 80
    from mediafm.store.catalog import Store
    st = Store(tmp_path / "s")
    assert st.contextual(st.title_ids()[0], res.model_id).shape[1] == 80


def test_pretraining_without_metadata_builds_a_model_without_metadata_input(store_root, tmp_path):
    cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=32), max_steps=4, val_every=2, use_meta=False,
                      progress=False, num_threads=1)
    pretrain(store_root, tmp_path / "m", cfg)
    m = load_pretrained(tmp_path / "m")
    assert m.meta_proj is None and m.config.meta_dim == 0


def test_masked_readout_predicts_each_shot_from_its_context_alone():
    torch.manual_seed(0)
    m = MediaFM(tiny(24, 0, readout="masked", max_shots=32)).eval()
    x = _unit(torch.randn(12, 24)).numpy()
    a = m.embed_title(x)
    x2 = x.copy()
    x2[5] = _unit(torch.randn(24)).numpy()  # change shot 5 only
    b = m.embed_title(x2)
    assert np.allclose(a[5], b[5], atol=1e-5)  # shot 5's own vector never reaches its prediction
    assert not np.allclose(a[6], b[6], atol=1e-4)  # ... but it is context for its neighbours


def test_title_readout_gives_every_shot_its_windows_summary_as_a_part_of_its_own():
    from mediafm.evaluation.clips import readout_blocks
    torch.manual_seed(0)
    cfg = tiny(24, 0, readout="stack+title+input", max_shots=8)
    m = MediaFM(cfg).eval()
    x = _unit(torch.randn(6, 24)).numpy()
    out = m.embed_title(x)
    assert readout_blocks(cfg, (16, 8)) == (16, 8, cfg.n_layers * cfg.hidden, cfg.hidden)
    title = out[:, -cfg.hidden:]
    title = title / np.linalg.norm(title, axis=1, keepdims=True)  # each shot's read-out part is scaled alone
    assert np.allclose(title, title[0], atol=1e-5)  # one summary for the whole title
    # the mean of the shots' final states, normalised as the layers are (the part is scaled with
    # the stack to unit length, so compare directions)
    m.config.readout = "hidden"
    states = torch.as_tensor(m.embed_title(x)).mean(0)
    summary = torch.nn.functional.layer_norm(states, states.shape)
    cos = torch.nn.functional.cosine_similarity(torch.as_tensor(title[0]), summary, dim=0)
    assert float(cos) > 0.9999
    # the summary of the first shots' title changes when the last shot changes
    x2 = x.copy()
    x2[-1] = _unit(torch.randn(24)).numpy()
    m.config.readout = "stack+title+input"
    changed = m.embed_title(x2)[0, -cfg.hidden:]
    assert not np.allclose(changed / np.linalg.norm(changed), title[0], atol=1e-4)
    unchanged = m.embed_title(x)[0, -cfg.hidden:]  # the same comparison holds when nothing changes
    assert np.allclose(unchanged / np.linalg.norm(unchanged), title[0], atol=1e-5)


def test_neighbor_loss_is_minimal_when_each_shot_names_its_neighbours():
    from mediafm.model.transformer import neighbor_loss
    x = _unit(torch.randn(2, 8, 16))
    real = torch.ones(2, 8, dtype=torch.bool)
    real[1, 6:] = False
    nxt = torch.roll(x, -1, 1)  # row i holds shot i + 1
    prv = torch.roll(x, 1, 1)  # row i holds shot i - 1
    right = neighbor_loss(nxt, prv, x, real, 0.05)
    wrong = neighbor_loss(prv, nxt, x, real, 0.05)
    assert float(right) < 0.05 < float(wrong)
    m = MediaFM(tiny(16, 0, neighbor_weight=0.5, objective="both"))
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, 3] = True
    _, loss = m(x, None, real, mask)
    loss.backward()
    assert m.next_proj.weight.grad.abs().sum() > 0 and torch.isfinite(loss)


def test_contrastive_loss_on_large_batches_scores_a_subset_and_still_ranks_the_true_shot(monkeypatch):
    import mediafm.model.transformer as mm
    monkeypatch.setattr(mm, "MAX_QUERIES", 8)
    monkeypatch.setattr(mm, "MAX_CANDIDATES", 32)
    torch.manual_seed(0)
    x = _unit(torch.randn(4, 30, 16))
    real = torch.ones(4, 30, dtype=torch.bool)
    mask = torch.rand(4, 30) < 0.5
    exact = mm.contrastive_loss(x.clone(), x, mask, real, 0.05)
    wrong = mm.contrastive_loss(torch.roll(x, 1, 1), x, mask, real, 0.05)
    assert float(exact) < 0.05 < float(wrong)
    pred = x.clone().requires_grad_()
    mm.contrastive_loss(pred, x, mask, real, 0.05).backward()
    assert int((pred.grad.abs().sum(-1) > 0).sum()) == 8  # only the sampled queries carry gradient


@pytest.mark.parametrize("objective, neighbor", [("cosine", 0.0), ("contrastive", 0.0), ("both", 0.5), ("cosine", 0.5)])
@pytest.mark.parametrize("subset", [False, True], ids=["all-queries", "query-subset"])
def test_the_rows_only_training_loss_equals_the_plain_path(monkeypatch, objective, neighbor, subset):
    """forward(predict_all=False) runs the output heads only on the rows the losses read; loss and
    gradients match the plain path's (float32 sums in another order: within 1e-5)."""
    import mediafm.model.transformer as tr

    if subset:  # the large-batch path: a random subset of queries and candidates
        monkeypatch.setattr(tr, "MAX_QUERIES", 7)
        monkeypatch.setattr(tr, "MAX_CANDIDATES", 40)
    torch.manual_seed(0)
    model = MediaFM(tiny(24, 8, objective=objective, neighbor_weight=neighbor, max_shots=32))
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(3, 20, 24, generator=g), dim=-1)
    meta = torch.randn(3, 8, generator=g)
    pad = torch.ones(3, 20, dtype=torch.bool)
    pad[1, 15:] = False
    mask = (torch.rand(3, 20, generator=g) < 0.3) & pad
    results = []
    for predict_all in (True, False):
        model.zero_grad()
        torch.manual_seed(5)
        pred, loss = model(x, meta, pad, mask, predict_all=predict_all)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        assert (pred is None) == (not predict_all)
    (plain, g_plain), (rows, g_rows) = results
    assert torch.allclose(plain, rows, atol=1e-5), (plain, rows)
    assert g_plain.keys() == g_rows.keys()
    for name in g_plain:
        assert torch.allclose(g_plain[name], g_rows[name], atol=1e-5), name


def test_modality_dropout_zeroes_whole_blocks_of_the_input_only():
    from mediafm.model.transformer import drop_modalities

    torch.manual_seed(0)
    x = _unit(torch.randn(4, 200, 10)) + 0.01  # no zero entries
    y = drop_modalities(x, (5, 3, 2), 0.3)
    blocks = [slice(0, 5), slice(5, 8), slice(8, 10)]
    dropped = torch.stack([(y[..., b] == 0).all(-1) for b in blocks], -1)
    kept = torch.stack([(y[..., b] == x[..., b]).all(-1) for b in blocks], -1)
    assert (dropped ^ kept).all()  # each block of each shot is either whole or zero
    assert 0.25 < float(dropped.float().mean()) < 0.35
    # trained with it: the input loses blocks, the loss still compares with the whole vectors
    cfg = tiny(10, 0, modality_dropout=0.3, modality_dims=(5, 3, 2), neighbor_weight=0.0)
    m = MediaFM(cfg)
    mask = torch.zeros(4, 200, dtype=torch.bool)
    mask[:, ::5] = True
    torch.manual_seed(1)
    _, loss = m(x, None, None, mask, predict_all=False)
    plain = MediaFM(dataclasses.replace(cfg, modality_dropout=0.0))
    plain.load_state_dict(m.state_dict())
    torch.manual_seed(1)
    _, manual = plain(drop_modalities(x, (5, 3, 2), 0.3), None, None, mask, targets=x, predict_all=False)
    assert torch.allclose(loss, manual)
    _, no_drop = plain(x, None, None, mask, predict_all=False)
    assert not torch.allclose(loss, no_drop)
    m.eval(), plain.eval()
    assert torch.allclose(m(x, None, None, mask)[1], plain(x, None, None, mask)[1])  # evaluation sees everything
    with pytest.raises(ConfigError, match="add up"):
        MediaFM(tiny(10, 0, modality_dims=(5, 3)))
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        tiny(10, 0, modality_dropout=1.0)


def test_modality_dropout_takes_the_block_sizes_from_the_store(store_root, tmp_path):
    from mediafm.training.pretrain import build_model, modality_dims

    encoders = {"video": {"dim": 8}, "audio": {"dim": 5}, "text": {"dim": 3}, "fusion": {}}
    assert modality_dims(encoders, 16) == (8, 5, 3)
    with pytest.raises(ConfigError, match="modality sizes"):
        modality_dims({}, 16)
    # A store encoded with the film descriptors: their block comes last.
    assert modality_dims({**encoders, "descriptors": {"dim": 17}}, 33) == (8, 5, 3, 17)
    cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=32, modality_dropout=0.2), max_steps=4, val_every=2,
                      progress=False, num_threads=1)
    assert build_model(cfg, 16, 8, encoders).config.modality_dims == (8, 5, 3)
    with pytest.raises(ConfigError, match="modality sizes"):
        pretrain(store_root, tmp_path / "none", cfg)  # this synthetic store records no encoders
    from mediafm.model import save_pretrained

    save_pretrained(build_model(cfg, 16, 8, encoders), tmp_path / "m")
    m = load_pretrained(tmp_path / "m")
    assert m.config.modality_dims == (8, 5, 3) and m.config.modality_dropout == 0.2


def test_boundary_change_is_texttiling_change_standardised_within_each_window():
    from mediafm.apps.segmentation import window_means
    from mediafm.model.transformer import boundary_change

    g = torch.Generator().manual_seed(0)
    a, b = _unit(torch.randn(2, 32, generator=g))
    shots = torch.stack([a] * 5 + [b] * 4) + 0.05 * torch.randn(9, 32, generator=g)  # a scene change after shot 4
    x = torch.zeros(2, 12, 32)
    x[0, :9] = shots
    x[1, :6] = shots[:6]
    real = torch.zeros(2, 12, dtype=torch.bool)
    real[0, :9], real[1, :6] = True, True
    change, valid = boundary_change(x, real)
    assert valid[0].tolist() == [True] * 8 + [False] * 4 and valid[1].tolist() == [True] * 5 + [False] * 7
    assert int(change[0].argmax()) == 4  # the last shot before the change
    assert torch.all(change[~valid] == 0)
    assert abs(float(change[0][valid[0]].mean())) < 1e-5 and abs(float(change[0][valid[0]].std(unbiased=False)) - 1) < 1e-4
    left, right = window_means(shots.numpy(), 2)  # the segmentation module's own change, on one window
    ref = 1 - (left * right).sum(1)
    ref = (ref - ref.mean()) / ref.std()
    assert np.allclose(change[0, :8].numpy(), ref, atol=1e-4)


def _boundary_change_written_out(target, real, window=2):
    """boundary_change as first written: the centred unit vectors, their cumulative sum, and the
    sums of the `window` shots either side of each cut gathered from it (then the same per-window
    standardisation)."""
    import torch.nn.functional as F

    from mediafm.model.transformer import standardised_cut_change

    x = target.float() * real[..., None]
    counts = real.sum(1, keepdim=True).clamp(min=1)
    x = F.normalize((x - x.sum(1, keepdim=True) / counts[..., None]) * real[..., None], dim=-1)
    B, N, _ = x.shape
    csum = torch.cat([x.new_zeros(B, 1, x.shape[-1]), x.cumsum(1)], 1)
    cut = torch.arange(1, N)
    lo = (cut - window).clamp(min=0).expand(B, -1)
    hi = torch.maximum(torch.minimum(cut + window, counts), cut[None] + 1)
    gather = lambda idx: csum.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))
    at_cut = gather(cut.expand(B, -1))
    change = 1 - F.cosine_similarity(at_cut - gather(lo), gather(hi) - at_cut, dim=-1)
    return standardised_cut_change(change, real)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_boundary_change_from_dot_products_equals_the_written_out_form(window):
    """The Gram-diagonal computation gives the written-out TextTiling target, padding and short
    windows included (a window of 2 shots, one of 1, a full one)."""
    from mediafm.model.transformer import boundary_change

    g = torch.Generator().manual_seed(window)
    x = torch.randn(4, 20, 12, generator=g) + 0.5
    real = torch.zeros(4, 20, dtype=torch.bool)
    for j, n in enumerate((20, 13, 2, 1)):
        real[j, :n] = True
    x = x * real[..., None]  # batches carry zero padding rows
    ours, valid = boundary_change(x, real, window)
    ref, ref_valid = _boundary_change_written_out(x, real, window)
    assert torch.equal(valid, ref_valid)
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()


def _scene_batch(g, B=8, N=24, dim=16):
    """Windows of scenes of 2-6 shots, each shot its scene's vector plus noise."""
    x = torch.zeros(B, N, dim)
    for j in range(B):
        i = 0
        while i < N:
            k = int(torch.randint(2, 7, (1,), generator=g))
            x[j, i:i + k] = torch.randn(dim, generator=g) + 0.3 * torch.randn(min(k, N - i), dim, generator=g)
            i += k
    return _unit(x)


def test_boundary_loss_is_added_and_falls_on_a_learnable_toy():
    """A transformer must learn to compare the shots on either side of each cut, which takes it ~1,000
    steps here (with the neighbour loss, which teaches it where its neighbours are)."""
    from mediafm.model.transformer import boundary_change

    torch.manual_seed(0)
    m = MediaFM(tiny(16, 0, boundary_weight=1.0))
    off = MediaFM(tiny(16, 0))
    off.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("boundary_proj")})
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(8, 24, dtype=torch.bool)
    mask[:, ::5] = True
    real = torch.ones(8, 24, dtype=torch.bool)

    def boundary_error(x):
        with torch.no_grad():
            target, valid = boundary_change(x, real)
            return float(((m.boundary_proj(m.encode(x, None, None)[:, 2:])[..., 0] - target) ** 2)[valid].mean())

    held = _scene_batch(torch.Generator().manual_seed(99))
    m.eval(), off.eval()
    with torch.no_grad():
        assert float(m(held, None, None, mask)[1]) > float(off(held, None, None, mask)[1])  # the term is on
    before = boundary_error(held)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    for _ in range(1000):
        _, loss = m(_scene_batch(g), None, None, mask, predict_all=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert before > 0.8 and boundary_error(held) < 0.6  # a constant guess scores 1: targets are standardised


@pytest.mark.parametrize("subset", [False, True], ids=["all-queries", "query-subset"])
def test_infonce_through_the_heads_weights_equals_scoring_the_predictions(monkeypatch, subset):
    """With many queries, InfoNCE scores candidates through a linear head's weights
    (`_cosine_logits`: h . (W^T c) + b . c over the prediction's length) instead of through the
    predictions: the contrastive and neighbour losses, the `both` objective (whose InfoNCE reads
    its queries' lengths from the cosine term's predictions) and every gradient are those of the
    plain path (float32: within 1e-5; bf16 autocast: within bf16 rounding)."""
    import mediafm.model.transformer as tr

    if subset:
        monkeypatch.setattr(tr, "MAX_QUERIES", 30)
        monkeypatch.setattr(tr, "MAX_CANDIDATES", 70)
    g = torch.Generator().manual_seed(0)
    proj = torch.nn.Linear(8, 96)  # D = 96, h = 8: factored from 10 queries on
    flat = torch.randn(4 * 25, 8, generator=g)
    target = torch.randn(4, 25, 96, generator=g)
    real = torch.ones(4, 25, dtype=torch.bool)
    real[2, 18:] = False
    mask = (torch.rand(4, 25, generator=g) < 0.5) & real
    assert int(mask.sum()) > 30
    for bf16 in (False, True):
        results = []
        for factored in (False, True):
            monkeypatch.setattr(tr, "FACTORED_LOGITS", factored)
            proj.zero_grad()
            x = flat.clone().requires_grad_()
            rows = tr.HeadRows(proj, x)
            torch.manual_seed(3)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = (tr.contrastive_loss(rows, target, mask, real, 0.1)
                        + tr.neighbor_loss(rows, tr.HeadRows(proj, x), target, real, 0.1)
                        + tr.OBJECTIVES["both"](rows, target, mask, real, 0.1))
            loss.backward()
            results.append((float(loss.detach()), x.grad.clone(), proj.weight.grad.clone(), proj.bias.grad.clone()))
        (plain, *g_plain), (ours, *g_ours) = results
        if bf16:
            assert abs(plain - ours) < 0.02 * abs(plain)
            for a, b in zip(g_plain, g_ours):
                assert float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)) > 0.99
        else:
            assert abs(plain - ours) < 1e-5
            for a, b in zip(g_plain, g_ours):
                assert torch.allclose(a, b, atol=1e-5)
