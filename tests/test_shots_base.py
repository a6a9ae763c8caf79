"""Detector registry, shot tiling, boundary scoring, and exact cuts on generated videos."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mediafm.errors import ConfigError
from mediafm.shots import available_detectors, detect_shots, get_detector, shots_from_boundaries
from mediafm.shots.base import ShotDetector, detector_class, register_detector
from mediafm.shots.metrics import Transition, score_boundaries
from mediafm_testing.media import color_shots, write_video


def _runnable() -> list[str]:
    """Every registered detector that can run here, once (aliases left out)."""
    names = {detector_class(n).name for n in available_detectors()}
    return sorted(n for n in names if not detector_class(n).check())


DETECTORS = _runnable()  # before any test registers its own


def test_registry_names_and_unknown():
    names = available_detectors()
    assert {"transnetv2", "adaptive", "fast"} <= set(names)
    assert get_detector("fast").name == "adaptive"
    with pytest.raises(ConfigError, match="unknown shot detector"):
        get_detector("nope")


def test_builtin_detectors_run_offline():
    assert {"transnetv2", "adaptive"} <= set(DETECTORS)


def test_detectors_register_without_their_runtimes():
    """A missing runtime makes a detector unavailable, with the reason; it stays registered."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = sys.modules['scenedetect'] = None\n"
            "from mediafm.errors import ModelUnavailableError\n"
            "from mediafm.shots import available_detectors, get_detector\n"
            "from mediafm.shots.base import detector_class\n"
            "print(available_detectors())\n"
            "print(sorted(detector_class(n).check().split(':')[0] for n in ('adaptive', 'transnetv2')))\n"
            "try:\n    get_detector('transnetv2')\nexcept ModelUnavailableError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "['adaptive', 'fast', 'transnetv2']"
    assert out[1] == "['cannot import scenedetect', 'cannot import torch']"
    assert out[2].startswith("shot detector 'transnetv2' is not available: cannot import torch")


def test_register_twice_is_an_error():
    @register_detector("test-every-10")
    class Every10(ShotDetector):
        def boundaries(self, frames):
            return (i for i, _ in enumerate(frames) if i and i % 10 == 0)

    assert list(get_detector("test-every-10").boundaries([None] * 25)) == [10, 20]
    with pytest.raises(ValueError):
        register_detector("test-every-10")(type("Other", (Every10,), {}))


@pytest.mark.parametrize("name", DETECTORS)
def test_detectors_on_random_input(name):
    det = get_detector(name)
    w, h = det.frame_size
    frames = np.random.default_rng(0).integers(0, 255, (40, h, w, 3), dtype=np.uint8)
    out = list(det.boundaries(iter(frames)))
    assert all(0 < b < 40 for b in out) and out == sorted(set(out))
    assert list(det.boundaries(iter([]))) == []


def test_shots_tile_the_title():
    pts = [i * 0.04 for i in range(100)]
    shots = shots_from_boundaries([0, 30, 30, 70, 100, 250], pts, 4.0)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 29), (30, 69), (70, 99)]
    assert [s.index for s in shots] == [0, 1, 2]
    assert math.isclose(shots[1].start_s, 1.2) and math.isclose(shots[0].end_s, shots[1].start_s)
    assert shots[-1].end_s == 4.0
    assert shots_from_boundaries([], [], 0.0) == []


def test_score_boundaries_one_to_one():
    truth = [Transition("cut", 100, 100), Transition("dissolve", 200, 210), Transition("cut", 300, 300)]
    s = score_boundaries([101, 99, 197, 305, 400], truth)
    # 101 and 99 both fit the cut at 100 but only one counts; 197 is outside the widened dissolve 198-212.
    assert s.matched == 1 and s.n_detected == 5
    assert [t.start for t in s.misses] == [200, 300] and s.false_alarms == [101, 197, 305, 400]
    perfect = score_boundaries([100, 205, 302], truth)
    assert perfect.f1 == 1.0 and not perfect.misses


VFR_CUTS = [17, 45, 76, 130]


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("shots") / "colour.mp4"
    # Variable frame rate: times are not index / fps; shots must take them from PTS.
    pts = np.cumsum(np.where(np.arange(160) % 3 == 0, 0.05, 0.03)) - 0.05
    write_video(path, color_shots(VFR_CUTS, 160, size=(160, 96)), pts_s=list(pts))
    return path, pts


@pytest.mark.parametrize("name", DETECTORS)
def test_generated_cuts_detected_exactly(colour_video, name):
    path, pts = colour_video
    shots = detect_shots(path, name)
    assert [s.start_frame for s in shots[1:]] == VFR_CUTS
    assert shots[-1].end_frame == 159
    for s in shots:
        assert s.start_s == pytest.approx(pts[s.start_frame], abs=1e-4)
    assert all(a.end_s == b.start_s for a, b in zip(shots, shots[1:]))
