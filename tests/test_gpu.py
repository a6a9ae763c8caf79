"""The GPU paths give the CPU's outputs, within stated tolerances (`pytest -m gpu`, on a CUDA machine).

Selected out of the default run by the `gpu` marker. Run without a CUDA device, every test fails
(it does not skip: a GPU check that passes without a GPU has checked nothing). The tolerances:

- float32 on both devices (TF32 off): the model's outputs, gradients and embeddings to 1e-4 of
  their scale; TransNetV2's probabilities to 1e-4; batches gathered on the GPU bit for bit;
- the GPU's reduced precision against the CPU's defaults: TransNetV2 (float16 vs the CPU's int8 +
  bfloat16 stream) the same boundaries on the montage, probabilities within 0.2 (the CPU path's
  own bound against float32); EfficientNet-Lite0 and MiniLM (float16 vs onnxruntime float32)
  cosine >= 0.999 per image or sentence; YAMNet (the int8 graph simulated in torch vs
  onnxruntime's integer kernels) cosine >= 0.99 per clip, as the CPU test of that path states;
- the whole pipeline on the montage: shots within 2 frames; frames sampled at the same indices
  within 4 levels on average (another scaling path: see the test), fused vectors cosine >= 0.99.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu

CUDA = "cuda"


@pytest.fixture(autouse=True, scope="module")
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.fail(f"no CUDA device (torch {torch.__version__}): the GPU checks need one; they are "
                    "selected out of the default run (`-m 'not gpu'`)", pytrace=False)


@pytest.fixture
def strict_fp32():
    """float32 products really in float32 on the GPU (no TF32), for exact comparisons."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=False):
        yield
    torch.backends.cuda.matmul.allow_tf32 = matmul


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def _rel(a, b) -> float:
    a, b = (t.detach().float().cpu() if torch.is_tensor(t) else torch.as_tensor(t) for t in (a, b))
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


# ----------------------------------------------------------------------------- model and training
def _model_and_batch(readout: str = "hidden", distance_bias: bool = True):
    from mediafm.model.transformer import MediaFM, small

    torch.manual_seed(0)
    model = MediaFM(small(96, 32, max_shots=128, objective="both", neighbor_weight=0.5, readout=readout,
                          distance_bias=distance_bias))
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(3, 100, 96, generator=g), dim=-1)
    meta = torch.nn.functional.normalize(torch.randn(3, 32, generator=g), dim=-1)
    pad = torch.ones(3, 100, dtype=torch.bool)
    pad[2, 70:] = False
    masked = (torch.rand(3, 100, generator=g) < 0.2) & pad
    return model, (x, meta, pad, masked)


def test_model_forward_and_gradients_match_the_cpu(strict_fp32):
    model, batch = _model_and_batch()
    # The InfoNCE subsampling draws from torch's RNG on each device: compare the cosine objective.
    model.config.objective, model.config.neighbor_weight = "cosine", 0.0
    model.next_proj = model.prev_proj = None
    pred, loss = model(*batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    gpu = model.to(CUDA)
    gpu.zero_grad()
    pred_g, loss_g = gpu(*(t.to(CUDA) for t in batch))
    loss_g.backward()
    assert _rel(pred_g, pred) < 1e-4 and abs(float(loss_g.detach()) - float(loss.detach())) < 1e-5
    assert max(_rel(p.grad, grads[n]) for n, p in gpu.named_parameters() if n in grads) < 1e-4


def test_bf16_autocast_stays_close_to_float32():
    model, batch = _model_and_batch()
    with torch.no_grad():
        ref = model(*batch)[0]
        gpu = model.to(CUDA)
        with torch.autocast(CUDA, dtype=torch.bfloat16):
            fast = gpu(*(t.to(CUDA) for t in batch))[0]
    assert _cos(fast.float().cpu().numpy(), ref.numpy()).min() > 0.99


def test_no_padding_mask_equals_an_all_true_mask(strict_fp32):
    """Unpadded GPU batches pass pad_mask=None (no mask to build): the same outputs as the mask."""
    model, (x, meta, _, masked) = _model_and_batch()
    gpu = model.to(CUDA)
    x, meta, masked = x.to(CUDA), meta.to(CUDA), masked.to(CUDA)
    with torch.no_grad():
        a = gpu(x, meta, torch.ones_like(masked), masked)
        b = gpu(x, meta, None, masked)
    assert _rel(b[0], a[0]) < 1e-5 and abs(float(a[1]) - float(b[1])) < 1e-6


@pytest.mark.parametrize("distance_bias", [True, False])
def test_embed_title_matches_the_cpu(strict_fp32, distance_bias):
    model, _ = _model_and_batch(readout="stack+input", distance_bias=distance_bias)
    fused = np.random.default_rng(0).standard_normal((300, 96)).astype(np.float32)
    fused /= np.linalg.norm(fused, axis=1, keepdims=True)
    meta = np.ones(32, np.float32) / np.sqrt(32)
    cpu, cls = model.embed_title(fused, meta, return_cls=True)
    gpu, cls_g = model.to(CUDA).embed_title(fused, meta, return_cls=True)
    assert gpu.shape == cpu.shape == (300, model.config.embed_dim)
    assert np.abs(gpu - cpu).max() < 1e-4 and np.abs(cls_g - cls).max() < 1e-4 * np.abs(cls).max()


def test_gpu_optimisers_take_the_cpu_step():
    """BatchedMuon + fused AdamW on CUDA against the same on the CPU: one step from the same
    gradients moves every parameter the same way (bfloat16 Newton-Schulz on both)."""
    from mediafm.training.optim import OptimConfig, build_optimizer

    model, _ = _model_and_batch()
    gen = torch.Generator().manual_seed(2)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 0.01
    gpu = _copy_to(model, CUDA)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cpu_opt, gpu_opt = build_optimizer(model, OptimConfig()), build_optimizer(gpu, OptimConfig())
    assert type(gpu_opt.optimizers[0]).__name__ == "BatchedMuon" and gpu_opt.optimizers[1].defaults["fused"]
    cpu_opt.step()
    gpu_opt.step()
    for n, p in gpu.named_parameters():
        d_cpu, d_gpu = (model.get_parameter(n) - before[n]).flatten(), (p.detach().cpu() - before[n]).flatten()
        if d_cpu.norm() > 0:
            assert float(torch.nn.functional.cosine_similarity(d_gpu, d_cpu, dim=0)) > 0.999, n


def _copy_to(model, device):
    import copy

    other = copy.deepcopy(model).to(device)
    for p, q in zip(model.parameters(), other.parameters()):
        q.grad = None if p.grad is None else p.grad.to(device)
    return other


def test_device_cache_batches_equal_host_batches(tmp_path):
    from mediafm.training.data import (
        DeviceCache,
        MaskSpec,
        build_cache,
        iter_batches,
        split_titles,
    )
    from mediafm_testing.synthetic import SyntheticConfig, structured_store

    structured_store(tmp_path, SyntheticConfig(n_titles=12, dim=16, meta_dim=8, shots_per_title=(20, 70), seed=3))
    cache = build_cache(tmp_path)
    tr, _ = split_titles(cache.title_ids, 0.2, 0)
    assert DeviceCache.fits(cache, CUDA)
    dev = DeviceCache(cache, CUDA)
    spec = MaskSpec(ratio=0.3, keep=0.2, random=0.3)
    for a, b in zip(iter_batches(cache, tr, 40, 4, 0, 2, spec, pin=True),
                    iter_batches(cache, tr, 40, 4, 0, 2, spec, device_cache=dev), strict=True):
        assert a.fused.is_pinned() and b.fused.device.type == "cuda"
        for name in ("fused", "meta", "mask_positions", "times", "keep_positions", "targets"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or torch.equal(x, y.cpu()), name
        assert (b.pad_mask is None) == bool(a.pad_mask.all())


def test_pretrain_runs_on_the_gpu(tmp_path):
    """`mediafm pretrain` on CUDA: device cache, bf16, checkpoints, validation, a finite loss
    (compiling is exercised by benchmarks/pretrain.py, which gpu.sh runs first)."""
    from mediafm.model import ModelConfig
    from mediafm.training.optim import OptimConfig
    from mediafm.training.pretrain import TrainConfig, pretrain
    from mediafm_testing.synthetic import SyntheticConfig, structured_store

    structured_store(tmp_path / "s", SyntheticConfig(n_titles=16, dim=64, meta_dim=16, seed=5))
    cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=64), batch_size=4, max_steps=12, val_every=6,
                      progress=False, log_every=3, checkpoint_every=6, optim=OptimConfig(warmup_steps=2))
    res = pretrain(tmp_path / "s", tmp_path / "m", cfg)
    assert res.steps == 12 and np.isfinite(res.best_val_loss) and np.isfinite(res.last_train_loss)


def test_pinned_staging_copies_exactly():
    from mediafm.devices import PinnedStaging

    stage = PinnedStaging(CUDA)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, (n, 27, 48, 3), dtype=np.uint8) for n in (5, 300, 7, 300)]
    arrays += [rng.standard_normal((64, 100)).astype(np.float32), rng.random((3, 9)) < 0.5]
    outs = [stage(a) for a in arrays]  # copies in flight while the buffers are reused
    for a, t in zip(arrays, outs):
        assert t.device.type == "cuda" and np.array_equal(t.cpu().numpy(), a)


# ----------------------------------------------------------------------------- shots and encoders
@pytest.fixture(scope="module")
def montage48(montage) -> np.ndarray:
    from mediafm.media.decode import iter_frames

    return np.stack([f.image for f in iter_frames(montage, size=(48, 27))])


def test_transnetv2_gpu_equals_the_whole_title_stream(montage48, strict_fp32):
    from mediafm.shots.transnetv2 import (
        TransNetV2Detector,
        iter_probabilities,
        iter_probabilities_blocks,
    )

    net = TransNetV2Detector(device="cpu").net
    frames = montage48[:700]
    ref = np.concatenate(list(iter_probabilities(net, iter(frames), window=len(frames) + 50, context=25)))
    gpu_net = TransNetV2Detector(device=CUDA).net
    ours = np.concatenate(list(iter_probabilities_blocks(gpu_net, iter(frames), kept=256, device=CUDA)))
    assert ours.shape == ref.shape and np.abs(ours - ref).max() < 1e-4


def test_transnetv2_gpu_finds_the_cpu_boundaries(montage48, montage_truth):
    from mediafm.shots.metrics import score_boundaries, transitions_from_truth
    from mediafm.shots.transnetv2 import TransNetV2Detector

    cpu, gpu = TransNetV2Detector(device="cpu"), TransNetV2Detector(device=CUDA)
    assert gpu.lookahead == gpu.config.gpu_chunk + 98 + gpu.config.min_gap + 64
    p_cpu = np.concatenate(list(cpu.probabilities(iter(montage48))))
    p_gpu = np.concatenate(list(gpu.probabilities(iter(montage48))))
    assert p_gpu.shape == p_cpu.shape and np.abs(p_gpu - p_cpu).max() < 0.2
    found, ref = list(gpu.boundaries(iter(montage48))), list(cpu.boundaries(iter(montage48)))
    # A boundary is the middle of a run above 0.5: a run's edge may move a frame with precision.
    assert len(found) == len(ref) and max(abs(a - b) for a, b in zip(found, ref)) <= 2
    assert score_boundaries(found, transitions_from_truth(montage_truth)).f1 >= 0.95


@pytest.fixture(scope="module")
def montage_squares(montage) -> np.ndarray:
    from mediafm.media.decode import iter_frames

    return np.stack([f.square(224) for i, f in enumerate(iter_frames(montage)) if i % 60 == 0])


def test_effnet_gpu_matches_onnxruntime(montage_squares):
    from mediafm.encoders.video_effnet import EfficientNetLite0

    cpu, gpu = EfficientNetLite0(device="cpu"), EfficientNetLite0(device=CUDA)
    assert cpu.session is not None and gpu.model is not None
    (f, lg), (fg, lgg) = cpu.encode_with_scores(montage_squares), gpu.encode_with_scores(montage_squares)
    assert fg.shape == f.shape == (len(montage_squares), 1280) and fg.dtype == np.float32
    assert _cos(fg, f).min() > 0.999 and np.abs(lgg - lg).max() < 0.25


def test_yamnet_gpu_matches_onnxruntime(montage):
    from mediafm.encoders.audio_yamnet import YamNet
    from mediafm.media.audio import iter_audio

    wave = np.concatenate(list(iter_audio(montage)))
    clips = [wave[i * 16_000:(i + 4) * 16_000] for i in range(0, 90, 6)]
    cpu, gpu = YamNet(device="cpu"), YamNet(device=CUDA)
    (e, s), (eg, sg) = cpu.encode_with_scores(clips), gpu.encode_with_scores(clips)
    assert eg.shape == e.shape == (len(clips), 1024) and np.isfinite(eg).all()
    assert _cos(eg, e).min() > 0.99 and np.abs(sg - s).max() < 0.05 * np.abs(s).max()


def test_minilm_gpu_matches_onnxruntime(montage, tmp_path):
    from mediafm.encoders.text_minilm import MiniLM
    from mediafm.media.subtitles import find_cues
    from mediafm_testing.gpu import minilm_weights

    weights, _ = minilm_weights(tmp_path)
    cues = find_cues(montage)[0]
    texts = [c.text for c in cues] + ["", "x", " ".join(["the quick brown fox"] * 90), "日本語のテキスト"]
    cpu = MiniLM(device="cpu", weights_dir=weights)
    gpu = MiniLM(device=CUDA, weights_dir=weights)
    a, b = cpu.encode(texts), gpu.encode(texts)
    assert b.shape == a.shape == (len(texts), 384) and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-4)
    assert _cos(b, a).min() > 0.999


def test_the_pipeline_on_the_gpu_gives_the_cpu_shots_and_features(montage, tmp_path):
    """ingest (TransNetV2) + encode on the montage with device cuda and with device cpu."""
    from mediafm.encoders.config import EncodeConfig
    from mediafm.encoders.encode_store import encode_store
    from mediafm.ingest import IngestConfig, ingest
    from mediafm.store.catalog import Store
    from mediafm_testing.gpu import minilm_weights

    weights, _ = minilm_weights(tmp_path)
    stores = {}
    for device in ("cpu", CUDA):
        root = tmp_path / device
        report = ingest([montage], root, IngestConfig(device=device), encode=False, show_progress=False)
        assert not report.failed
        encode_store(root, EncodeConfig(device=device, text_weights=str(weights) if weights else None), progress=False)
        stores[device] = Store(root)
    cpu, gpu = stores["cpu"], stores[CUDA]
    (tid,) = cpu.title_ids()
    a, b = (s.shots(tid)[["start_frame", "end_frame"]].to_numpy() for s in (cpu, gpu))
    assert a.shape == b.shape and np.abs(a - b).max() <= 2  # see test_transnetv2_gpu_finds_the_cpu_boundaries
    same = (a == b).all(1)  # shots whose frames are sampled at the same indices
    # The GPU detector's longer look-ahead makes ingest keep even 360p frames reduced in YUV
    # (ingest/worker.py), so the same picks come through another scaling path: close, not equal.
    fg, fc = gpu.frames(tid)[same].astype(np.int16), cpu.frames(tid)[same].astype(np.int16)
    assert same.mean() >= 0.8 and np.abs(fg - fc).mean() < 4
    assert _cos(gpu.features(tid)[same], cpu.features(tid)[same]).min() > 0.99
