"""Pretraining: data cache and split, exact resume, torchrun DDP == single process, embed_store, CLI."""

from __future__ import annotations

import dataclasses
import shutil
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mediafm.cli.main import main
from mediafm.errors import StoreError
from mediafm.model import ModelConfig, load_pretrained
from mediafm.store.catalog import Store
from mediafm.training.data import DeviceCache, MaskSpec, build_cache, epoch_windows, iter_batches, split_titles
from mediafm.training.embed import embed_store
from mediafm.training.optim import OptimConfig, split_params
from mediafm.training.pretrain import TrainConfig, backward, build_model, pretrain
from mediafm_testing.synthetic import SyntheticConfig, structured_store

torch.set_num_threads(1)

SMALL = SyntheticConfig(n_titles=12, dim=16, meta_dim=8, shots_per_title=(20, 70), seed=3)


def _cfg(**kw) -> TrainConfig:
    # DDP equality holds exactly for the cosine objective (see test_torchrun_two_processes_equal_one)
    kw = {"objective": "cosine", "neighbor_weight": 0.0, **kw}
    base = TrainConfig(preset="tiny", model=ModelConfig(max_shots=32), batch_size=4, epochs=3, val_fraction=0.2,
                       progress=False, num_threads=1, checkpoint_every=2, log_every=1,
                       optim=OptimConfig(warmup_steps=2))
    return base.override(**kw)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    structured_store(root, SMALL)
    return root


def test_cache_matches_store_and_is_memory_mapped(store_root):
    cache = build_cache(store_root)
    store = Store(store_root)
    assert isinstance(cache.fused, np.memmap)
    for i, tid in enumerate(cache.title_ids):
        a, b = cache.offsets[i], cache.offsets[i + 1]
        assert np.array_equal(cache.fused[a:b], store.features(tid))
        m = store.meta_embedding(tid)
        assert np.array_equal(cache.meta[i], m if m is not None else np.zeros(SMALL.meta_dim, np.float32))
    assert build_cache(store_root).root == cache.root  # reused while the store is unchanged


def test_a_bf16_cache_holds_the_store_rounded_as_torch_rounds_and_gives_the_same_batches(store_root):
    """The bfloat16 training cache (CPU bf16 training) is a cache of its own beside the float32 one;
    its rows are the store's vectors cast to bfloat16, and its batches are the float32 cache's
    batches cast, with the same masks, swaps, times and metadata."""
    from mediafm.training.data import collate, title_windows

    full, half = build_cache(store_root), build_cache(store_root, dtype="bfloat16")
    assert half.root != full.root and half.dtype == "bfloat16" and half.fused.dtype == np.uint16
    assert build_cache(store_root, dtype="bfloat16").root == half.root  # reused
    store = Store(store_root)
    for i, tid in enumerate(half.title_ids):
        a, b = half.offsets[i], half.offsets[i + 1]
        got = torch.from_numpy(np.array(half.fused[a:b])).view(torch.bfloat16)
        assert torch.equal(got, torch.tensor(store.features(tid)).to(torch.bfloat16))
    wins = [title_windows(t, full.length(t), 512)[0] for t in range(3)]
    spec = MaskSpec(0.3, keep=0.2, random=0.3)
    b32, b16 = collate(full, wins, spec, 0, 0), collate(half, wins, spec, 0, 0)
    assert b16.fused.dtype == torch.bfloat16 and b16.targets is not None
    assert torch.equal(b16.fused, b32.fused.to(torch.bfloat16)) and torch.equal(b16.targets, b32.targets.to(torch.bfloat16))
    for name in ("pad_mask", "mask_positions", "keep_positions", "times", "meta"):
        assert torch.equal(getattr(b16, name), getattr(b32, name)), name
    with pytest.raises(ValueError, match="float32"):
        DeviceCache(half, "cpu")


def test_cpu_bf16_training_reads_a_bf16_cache_and_its_step_computes_the_float32_caches(store_root, monkeypatch):
    """Where bf16 autocast runs on the CPU, `pretrain` trains from the bfloat16 cache; a step on its
    batch has the loss and gradients of the same step on the float32 cache's batch (the first
    product casts its inputs to bf16 either way; the losses read the targets rounded)."""
    import mediafm.training.pretrain as tp
    from mediafm.training.data import collate, title_windows

    monkeypatch.setattr(tp, "cpu_bf16_native", lambda: True)
    assert tp.cache_dtype(_cfg(), torch.device("cpu")) == "bfloat16"
    assert tp.cache_dtype(_cfg(bf16=False), torch.device("cpu")) == "float32"
    assert tp.cache_dtype(_cfg(), torch.device("cuda")) == "float32"
    full, half = build_cache(store_root), build_cache(store_root, dtype="bfloat16")
    cfg = _cfg()
    wins = [title_windows(t, full.length(t), cfg.model.max_shots)[0] for t in range(4)]
    results = []
    for cache in (full, half):
        torch.manual_seed(0)
        model = tp.build_model(cfg, cache.dim, cache.meta_dim)
        b = collate(cache, wins, cfg.mask, 0, 0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, loss = model(b.fused, b.meta, b.pad_mask, b.mask_positions, None, b.keep_positions, b.targets,
                            predict_all=False)
        loss.backward()
        results.append((float(loss.detach()), [p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    (l32, g32), (l16, g16) = results
    assert abs(l16 - l32) < 0.01 * abs(l32)
    cos = [float(torch.nn.functional.cosine_similarity(a, b, dim=0)) for a, b in zip(g32, g16)]
    assert min(cos) > 0.99, cos


def test_batches_read_the_cache_rows_and_a_short_cache_is_a_clear_error(store_root, tmp_path):
    """collate reads each window's rows straight into the batch: they equal the memmap's, the
    padding stays zero; a cache file cut short names itself instead of returning garbage rows."""
    from mediafm.training.data import collate, title_windows

    cache = build_cache(store_root)
    wins = [title_windows(t, cache.length(t), 512)[0] for t in range(3)]
    batch = collate(cache, wins, 0.2, 0, 0)
    for j, w in enumerate(wins):
        a = int(cache.offsets[w.title]) + w.start
        assert np.array_equal(batch.fused[j, :w.length].numpy(), cache.fused[a:a + w.length])
        assert np.array_equal(batch.times[j, :w.length].numpy(), cache.times[a:a + w.length])
        assert not batch.fused[j, w.length:].any()
    short = tmp_path / "fused.npy"
    shutil.copy(cache.root / "fused.npy", short)
    with open(short, "r+b") as fh:
        fh.truncate(short.stat().st_size - 4 * cache.dim)
    cut = dataclasses.replace(cache, fused=np.memmap(short, np.float32, "r", offset=cache.fused.offset,
                                                     shape=(len(cache.fused) - 1, cache.dim)))
    n = len(cache.fused)
    with pytest.raises(StoreError, match="shorter than its index"):
        cut.read(n - 3, 3)


def test_cache_is_rebuilt_when_the_store_changes(tmp_path):
    structured_store(tmp_path, dataclasses.replace(SMALL, n_titles=3))
    first = build_cache(tmp_path)
    structured_store(tmp_path, dataclasses.replace(SMALL, n_titles=4))  # adds a title, rewrites others
    second = build_cache(tmp_path)
    assert second.root != first.root and len(second.title_ids) == 4


def test_split_is_by_title_deterministic_and_stable():
    ids = [f"t{i}" for i in range(200)]
    tr, va = split_titles(ids, 0.1, seed=0)
    assert not set(tr) & set(va) and sorted(tr + va) == list(range(200))
    assert 5 < len(va) < 40
    assert (tr, va) == split_titles(ids, 0.1, seed=0)
    tr2, va2 = split_titles(ids + ["new1", "new2"], 0.1, seed=0)
    assert set(va) <= set(va2)  # adding titles never moves existing ones across the split


def test_batches_are_deterministic_and_ranks_partition_the_global_batch(store_root):
    cache = build_cache(store_root)
    tr, _ = split_titles(cache.title_ids, 0.2, 0)
    one = list(iter_batches(cache, tr, 32, 4, seed=0, epoch=1, ratio=0.2))
    again = list(iter_batches(cache, tr, 32, 4, seed=0, epoch=1, ratio=0.2))
    assert all(torch.equal(a.fused, b.fused) and torch.equal(a.mask_positions, b.mask_positions)
               for a, b in zip(one, again, strict=True))
    r0 = list(iter_batches(cache, tr, 32, 4, 0, 1, 0.2, rank=0, world=2))
    r1 = list(iter_batches(cache, tr, 32, 4, 0, 1, 0.2, rank=1, world=2))
    for g, a, b in zip(one, r0, r1, strict=True):
        n = g.mask_positions[:2].shape[1]
        assert torch.equal(g.mask_positions[:2, :a.mask_positions.shape[1]], a.mask_positions[:, :n])
        assert int(g.mask_positions.sum()) == int(a.mask_positions.sum() + b.mask_positions.sum())
    masked = sum(int(b.mask_positions.sum()) for b in one)
    real = sum(int(b.pad_mask.sum()) for b in one)
    assert 0.17 < masked / real < 0.23  # 20% of real shots, never padding
    assert all(not (b.mask_positions & ~b.pad_mask).any() for b in one)
    wins = epoch_windows(cache, tr, 32, 0, 1)
    assert max(w.length for w in wins) <= 32  # long titles are cut into windows


def test_device_cache_batches_equal_host_batches(store_root):
    """The GPU's batches (rows gathered from a copy of the cache on the device), built here on the
    CPU: the same tensors as the host's, swapped inputs and padding included; no pad_mask when no
    window is padded."""
    cache = build_cache(store_root)
    tr, _ = split_titles(cache.title_ids, 0.2, 0)
    dev = DeviceCache(cache, "cpu", chunk_rows=50)  # several chunks
    spec = MaskSpec(ratio=0.3, keep=0.2, random=0.3)
    padded = full = 0
    for window in (40, 16):  # 40: some titles are shorter (padded batches); 16: none is
        host = iter_batches(cache, tr, window, 4, 0, 2, spec)
        gathered = iter_batches(cache, tr, window, 4, 0, 2, spec, device_cache=dev)
        for a, b in zip(host, gathered, strict=True):
            for name in ("fused", "meta", "mask_positions", "times", "keep_positions", "targets"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or torch.equal(x, y), name
            assert a.real == b.real == int(a.pad_mask.sum())
            if bool(a.pad_mask.all()):
                assert b.pad_mask is None
                full += 1
            else:
                assert torch.equal(a.pad_mask, b.pad_mask)
                padded += 1
    assert padded and full and any(b.targets is not None for b in iter_batches(cache, tr, 32, 4, 0, 2, spec))


def test_batched_muon_equals_torch_muon():
    """The GPU's Muon (one batched Newton-Schulz per shape), run here on the CPU, takes torch's
    steps, and its state loads into torch's Muon."""
    from mediafm.training.optim import BatchedMuon

    torch.manual_seed(0)
    shapes = [(48, 16), (48, 16), (16, 16), (16, 64), (16, 64)]
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    a, b = BatchedMuon(ours, lr=0.02, weight_decay=0.01), torch.optim.Muon(ref, lr=0.02, weight_decay=0.01)
    for _ in range(3):
        for p, q in zip(ours, ref):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        a.step()
        b.step()
    assert max(float((p - q).detach().abs().max()) for p, q in zip(ours, ref)) < 1e-2  # bfloat16 rounding at most
    torch.optim.Muon(ref, lr=0.02).load_state_dict(a.state_dict())


def test_muon_gets_only_hidden_matrices():
    m = build_model(_cfg(), 16, 8)
    muon, adamw = split_params(m)
    names = {id(p): n for n, p in m.named_parameters()}
    assert muon and all(names[id(p)].startswith("blocks.") and p.ndim == 2 for p in muon)
    assert {"in_proj.weight", "out_proj.weight", "pos_emb.weight", "mask_token"} <= {names[id(p)] for p in adamw}


def _weights(d: Path) -> dict:
    return load_file(str(d / "model.safetensors"))


def test_resumed_run_equals_uninterrupted_run(store_root, tmp_path):
    full = pretrain(store_root, tmp_path / "full", _cfg(max_steps=8))
    part = pretrain(store_root, tmp_path / "part", _cfg(max_steps=8, steps_this_run=3))
    assert part.stopped == "steps_this_run" and part.steps == 3
    resumed = pretrain(store_root, tmp_path / "part", _cfg(max_steps=8), resume=True)
    assert resumed.steps == full.steps == 8
    for sub in ("checkpoint", "."):
        a, b = _weights(tmp_path / "full" / sub), _weights(tmp_path / "part" / sub)
        assert all(torch.equal(a[k], b[k]) for k in a), sub
    assert resumed.best_val_loss == full.best_val_loss
    lines = lambda p: [r.split(",")[:5] for r in (p / "metrics.csv").read_text().splitlines()]  # noqa: E731
    assert lines(tmp_path / "full") == lines(tmp_path / "part")
    card = json.loads((tmp_path / "full" / "model_card.json").read_text())
    assert card["steps"] == 8 and card["encoders"]["fused"]["name"] == "synthetic"
    assert card["data"]["train_titles"] + card["data"]["val_titles"] == SMALL.n_titles
    assert (tmp_path / "full" / "MODEL_CARD.md").read_text().startswith("# mediafm-tiny")


def test_torchrun_two_processes_equal_one(store_root, tmp_path):
    """2 gloo ranks, each reading half of every global batch, end with the single-process weights.

    With the cosine objective only: the contrastive and neighbour losses draw their negatives from
    each rank's own share of the batch, so there a 2-rank run is close to, not equal to, one process.
    """
    args = ["pretrain", str(store_root), "--preset", "tiny", "--max-shots", "32", "--batch-size", "4",
            "--max-steps", "5", "--val-fraction", "0.2", "--warmup-steps", "2",
            "--threads", "1", "--optimizer", "adamw", "--objective", "cosine", "--neighbor-weight", "0",
            "--no-bf16"]  # float32: bf16 products round each rank's half-batch differently from the whole
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "mediafm.cli.main", *args, "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in a:
        # AdamW here: torch's Muon runs Newton-Schulz in bf16, which turns the all-reduce's float
        # rounding into ~1e-3 weight differences (the Muon path's gradients are checked exactly by
        # the next test). A wrong batch split would move weights by ~lr = 1e-3.
        assert torch.allclose(a[k], b[k], atol=2e-5), k


def _ddp_grad_worker(rank: int, rendezvous: str, store_root: str, out: str) -> None:
    torch.set_num_threads(1)
    # A file rendezvous, not a TCP port: a free port picked beforehand can be taken by another
    # process before the ranks bind it (this test failed that way once).
    torch.distributed.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    cache = build_cache(store_root)
    cfg = _cfg(bf16=False)  # float32: bf16 products round each rank's half-batch differently from the whole
    tr, _ = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
    model = build_model(cfg, cache.dim, cache.meta_dim)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    batch = next(iter_batches(cache, tr, 32, 4, 0, 0, 0.2, rank=rank, world=2))
    stats = backward(ddp, batch, cfg, 2, torch.device("cpu"))
    if rank == 0:
        torch.save({"stats": stats, "grads": {n: p.grad for n, p in model.named_parameters()}}, out)
    # Both ranks leave together, and without running C++ destructors: gloo's teardown aborted a
    # rank ("terminate called without an active exception") in about one run of six while the
    # other still worked, and now and then after both had passed the barrier too.
    torch.distributed.barrier()
    os._exit(0)


def test_ddp_step_gradient_equals_single_process_step(store_root, tmp_path):
    """2 gloo ranks with uneven masked counts give the gradient of one process on the global batch."""
    import torch.multiprocessing as mp

    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_grad_worker, args=(str(tmp_path / "rendezvous"), str(store_root), str(out)), nprocs=2, join=True)
    ddp = torch.load(out)
    cache = build_cache(store_root)
    cfg = _cfg(bf16=False)
    tr, _ = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
    model = build_model(cfg, cache.dim, cache.meta_dim)
    stats = backward(model, next(iter_batches(cache, tr, 32, 4, 0, 0, 0.2)), cfg, 1, torch.device("cpu"))
    assert torch.allclose(ddp["stats"], stats, rtol=1e-5)
    for n, p in model.named_parameters():
        assert torch.allclose(ddp["grads"][n], p.grad, atol=1e-7, rtol=1e-4), n


def test_embed_store_writes_contextual_embeddings(store_root, tmp_path):
    out = tmp_path / "m"
    pretrain(store_root, out, _cfg(max_steps=2))
    res = embed_store(store_root, out)
    store = Store(store_root)
    assert res.titles == SMALL.n_titles and res.model_id.startswith("mediafm-tiny-")
    assert store.model_ids() == [res.model_id]
    info = json.loads((store.contextual_dir(res.model_id) / "model.json").read_text())
    # <name>-<10 hex of the weights>-<read-out>; the default read-out joins the layers and the
    # title's summary with the input
    assert res.model_id == f"mediafm-tiny-{info['weights_sha256'][:10]}-stack-title-input"
    assert info["readout"] == "stack+title+input" and info["dim"] == 3 * 64 + 16
    model = load_pretrained(out)
    tid = store.title_ids()[0]
    emb, cls = model.embed_title(store.features(tid), store.meta_embedding(tid), return_cls=True)
    assert np.allclose(store.contextual(tid), emb, atol=1e-6)
    assert np.allclose(store.cls_embedding(tid), cls, atol=1e-6)
    assert embed_store(store_root, out).skipped == SMALL.n_titles  # resumable: nothing recomputed


def test_cli_embed_and_errors(store_root, tmp_path, capsys):
    assert main(["pretrain", str(store_root), "--out", str(tmp_path / "m"), "--preset", "tiny",
                 "--max-steps", "1", "--batch-size", "2", "--max-shots", "32", "--threads", "1"]) == 0
    assert main(["embed", str(store_root), "--model", str(tmp_path / "m"), "--overwrite"]) == 0
    assert "embedded 12 titles" in capsys.readouterr().out
    assert main(["pretrain", str(tmp_path / "nostore"), "--out", str(tmp_path / "x")]) == 1
    assert "not a mediafm store" in capsys.readouterr().err


def test_cli_defaults_come_from_the_config_dataclass():
    import argparse

    from mediafm.cli import pretrain as cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    assert cli.config_from_args(p.parse_args(["STORE", "--out", "M"])) == TrainConfig()


def test_pretrain_flags_map_onto_the_config():
    import argparse

    from mediafm.cli.pretrain import add_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert config_from_args(p.parse_args(["S", "--out", "M"])) == TrainConfig()
    flipped = config_from_args(p.parse_args(["S", "--out", "M", "--distance-bias" if not ModelConfig.distance_bias
                                             else "--no-distance-bias", "--neighbor-weight", "0.25"]))
    assert flipped.model.distance_bias is not ModelConfig.distance_bias and flipped.model.neighbor_weight == 0.25


def test_every_setting_is_a_flag_with_the_dataclass_default(capsys):
    """Every field of TrainConfig, of its model (the choices: --preset sets the sizes) and of its
    optimiser has a flag whose default is the dataclass's, shown in --help, and which sets that field."""
    import argparse
    from dataclasses import fields

    from mediafm.cli import pretrain as cli
    from mediafm.model.transformer import SIZE_FIELDS

    defaults = dict(cli.settings(TrainConfig()))
    expected = ({f.name for f in fields(TrainConfig)} - {"model", "optim"}
                | {f"model.{f.name}" for f in fields(ModelConfig) if f.name not in SIZE_FIELDS}
                | {f"optim.{f.name}" for f in fields(OptimConfig)})
    assert set(defaults) == expected == set(cli.OPTIONS)
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    actions = {a.dest: a for a in p._actions}
    assert all(actions[path].default == default for path, default in defaults.items())
    assert len({cli.flag(path) for path in defaults}) == len(defaults)
    flags = {s for a in p._actions for s in a.option_strings}
    assert {"--preset", "--max-steps", "--epochs", "--min-steps", "--batch-size", "--max-shots", "--objective",
            "--temperature", "--neighbor-weight", "--distance-bias", "--no-distance-bias", "--readout", "--mask-ratio",
            "--mask-span", "--keep-ratio", "--random-ratio", "--no-meta", "--val-fraction", "--val-every",
            "--patience", "--optimizer", "--lr", "--muon-lr", "--warmup-steps", "--time-features",
            "--checkpoint-every", "--steps-this-run", "--seed", "--device", "--compile", "--no-bf16", "--threads",
            "--resume"} <= flags  # every flag the command has always had

    # every flag given another valid value: each lands in its own field
    changed, argv = {}, ["S", "--out", "M"]
    for path, default in defaults.items():
        opt = cli.OPTIONS[path]
        if isinstance(default, bool):
            value, args = not default, [("--no-" if default else "--") + cli.flag(path).removeprefix("--")]
        else:
            value = (next(c for c in opt.choices if c != default) if opt.choices
                     else "cpu" if isinstance(default, str)
                     else (0.8, 0.9) if isinstance(default, tuple)
                     else default + 1 if isinstance(default, int)
                     else default * 2 or 0.05)
            args = [cli.flag(path), *map(str, value if isinstance(value, tuple) else [value])]
        changed[path], argv = value, argv + args
    cfg = cli.config_from_args(p.parse_args(argv))
    for path, value in changed.items():
        obj = cfg
        for name in path.split("."):
            obj = getattr(obj, name)
        assert obj == value != defaults[path], path

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for path, default in defaults.items():
        assert f"{cli.flag(path)}" in text and f"(default: {default})" in text, path


# ----------------------------------------------------------------------------- bf16 autocast on a CPU
@pytest.mark.parametrize("native", [True, False])
def test_autocast_only_where_bf16_is_native(monkeypatch, native):
    import mediafm.devices as devices

    monkeypatch.setattr(devices, "cpu_bf16_native", lambda: native)
    with devices.autocast("cpu", True):
        assert torch.is_autocast_enabled("cpu") is native  # emulated bf16 is slower than float32: off
    with devices.autocast("cpu", False):
        assert not torch.is_autocast_enabled("cpu")


def test_bf16_step_computes_what_the_float32_step_computes(store_root, monkeypatch):
    """The default step (both objectives, neighbour loss) under bf16 autocast: loss within 1% and every
    gradient within cosine 0.99 of float32's, on the same batch and weights (CPUs without native
    bf16 emulate it: same numbers, slower)."""
    import mediafm.devices as devices

    monkeypatch.setattr(devices, "cpu_bf16_native", lambda: True)
    cache = build_cache(store_root)
    kw = {"objective": "both", "neighbor_weight": 0.5}
    cfg32, cfg16 = _cfg(bf16=False, **kw), _cfg(bf16=True, **kw)
    tr, _ = split_titles(cache.title_ids, cfg32.val_fraction, cfg32.seed)
    m32 = build_model(cfg32, cache.dim, cache.meta_dim)
    m16 = build_model(cfg16, cache.dim, cache.meta_dim)
    m16.load_state_dict(m32.state_dict())
    batch = next(iter_batches(cache, tr, 32, 4, 0, 0, 0.2))
    torch.manual_seed(0)  # the InfoNCE candidates are drawn at random: the same draws for both
    s32 = backward(m32, batch, cfg32, 1, torch.device("cpu"))
    torch.manual_seed(0)
    s16 = backward(m16, batch, cfg16, 1, torch.device("cpu"))
    assert abs(float(s16[0]) / float(s32[0]) - 1) < 0.01
    for (n, a), b in zip(m32.named_parameters(), m16.parameters()):
        if a.grad is not None and a.grad.norm() > 0:
            assert torch.nn.functional.cosine_similarity(a.grad.flatten(), b.grad.flatten(), dim=0) > 0.99, n


def test_bf16_loss_curve_follows_float32(store_root, tmp_path, monkeypatch):
    """60 steps of the default objectives: the validation loss under bf16 ends within 3% of float32's."""
    import mediafm.devices as devices

    monkeypatch.setattr(devices, "cpu_bf16_native", lambda: True)
    kw = {"objective": "both", "neighbor_weight": 0.5, "epochs": 0, "max_steps": 60, "val_every": 20}
    curves = {}
    for bf16 in (False, True):
        res = pretrain(store_root, tmp_path / str(bf16), _cfg(bf16=bf16, **kw))
        curves[bf16] = [h["val_loss"] for h in res.history]
    assert len(curves[True]) == len(curves[False]) >= 3
    assert curves[False][-1] < curves[False][0]  # it learned
    assert abs(curves[True][-1] / curves[False][-1] - 1) < 0.03, curves


@pytest.mark.parametrize("with_bias", [False, True])
def test_window_attention_in_bf16_computes_what_the_fused_kernel_computes(with_bias):
    """The written-out bf16 attention of a CPU window against torch's fused kernel in float32:
    outputs and every input's gradient within bfloat16 rounding; in float32 it is the kernel itself."""
    import torch.nn.functional as F

    from mediafm.model.transformer import window_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 37, 16, generator=g) for _ in range(3))
    bias = -0.25 * torch.arange(37.0).sub(torch.arange(37.0)[:, None]).abs().expand(1, 4, 37, 37) if with_bias else None
    ref_in = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = F.scaled_dot_product_attention(*ref_in, attn_mask=bias)
    dy = torch.randn(ref.shape, generator=g)
    ref.backward(dy)
    ours_in = [t.to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
    ours = window_attention(*ours_in, None if bias is None else bias.to(torch.bfloat16))
    assert ours.dtype == torch.bfloat16
    ours.float().backward(dy)
    cos = lambda a, b: float(F.cosine_similarity(a.detach().float().flatten(), b.detach().float().flatten(), dim=0))  # noqa: E731
    assert cos(ours, ref) > 0.999 and float((ours.detach().float() - ref.detach()).abs().max()) < 0.05
    for a, b in zip(ours_in, ref_in):
        assert cos(a.grad, b.grad) > 0.99
    same = window_attention(q, k, v, bias)
    assert torch.equal(same, F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


def test_window_attention_in_bf16_is_as_close_to_float64_as_bf16_outputs_allow():
    """The bf16 form keeps scores and softmax in bf16 (accumulating in float32): against float64,
    its outputs and gradients must be within a few bf16 roundings (2^-8 relative each), on
    windows of the long-form sizes with the distance bias as encode builds it."""
    import torch.nn.functional as F

    from mediafm.model.transformer import distance_bias, window_attention

    g = torch.Generator().manual_seed(1)
    for n in (514, 130):
        bias = distance_bias(n - 2, 4)[None]
        q, k, v = (1.5 * torch.randn(1, 4, n, 64, generator=g) for _ in range(3))
        dy = torch.randn(1, 4, n, 64, generator=g)
        ref_in = [t.double().requires_grad_() for t in (q, k, v)]
        ref = F.scaled_dot_product_attention(*ref_in, attn_mask=bias.double())
        ref.backward(dy.double())
        ours_in = [t.to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
        ours = window_attention(*ours_in, bias.to(torch.bfloat16))
        ours.float().backward(dy)
        rel = lambda a, b: float((a.double() - b).norm() / b.norm())  # noqa: E731
        assert rel(ours.detach(), ref.detach()) < 0.01
        for a, b in zip(ours_in, ref_in):
            assert rel(a.grad, b.grad) < 0.012
