"""The shot-detector interface, its registry, and boundaries -> `Shot` records.

A detector is pure compute: it consumes RGB uint8 frames (already resized to its `frame_size`) in
presentation order and yields boundary frame indices as soon as each is certain, so a title of any
length is processed in bounded memory.

The built-in detectors are the `@register_detector` classes in the modules of `mediafm.shots`,
imported on the first lookup (mediafm.registry.import_modules). Like encoders, a detector imports
its runtime (torch, scenedetect) when it is built, so it is registered even where that runtime is
missing and `check()` says why it cannot run.
"""

from __future__ import annotations

import abc
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np

from mediafm.errors import ModelUnavailableError
from mediafm.registry import import_modules, import_reason, lookup, registrar
from mediafm.types import Shot


class ShotDetector(abc.ABC):
    """Finds shot boundaries in a stream of frames.

    Attributes:
        name: registry name.
        frame_size: (width, height) of the RGB uint8 frames `boundaries` expects.
        lookahead: how many frames after a boundary the detector may read before yielding it
            (streaming consumers keep that many recent frames to sample shots from).
        input_threads: threads the caller's frame source (decoder) should use, or None for its
            default. A detector that sets it may pull `frames` from a thread of its own, so a
            frame source that shares state with the consumer of the boundaries needs a lock.
        runs_on_gpu: whether the constructor takes `device` (mediafm.devices.resolve_device).
        requires: modules imported by `check()`; a failed import makes the detector unavailable.
    """

    name: str = ""
    frame_size: tuple[int, int] = (48, 27)
    lookahead: int = 0
    input_threads: int | None = None
    runs_on_gpu: bool = False
    requires: ClassVar[tuple[str, ...]] = ()
    _frame_cost: float | None = None

    @classmethod
    def check(cls) -> str:
        """'' when the detector can be constructed here, else the reason it cannot."""
        return import_reason(cls.requires)

    def frame_cost(self) -> float:
        """CPU seconds (all threads) this detector spends per frame in a long stream, measured once
        on random frames. Ingest weighs it against the decoder's cost to share the cores."""
        if self._frame_cost is None:
            w, h = self.frame_size
            frames = np.random.default_rng(0).integers(0, 256, (32, h, w, 3), dtype=np.uint8)

            marks: dict[int, float] = {}
            first, last = 64, 256  # past one-time setup (weights, kernels); before the final flush

            def source() -> Iterator[np.ndarray]:
                for i in range(last + 64):
                    if i in (first, last):
                        marks[i] = time.thread_time()
                    yield frames[i % len(frames)]

            for _ in self._single_thread_stream(source()):
                pass
            # A streaming detector has bounded lag: the work between pulling these two frames is
            # the work of that many frames.
            self._frame_cost = max(marks[last] - marks[first], 0.0) / (last - first)
        return self._frame_cost

    def _single_thread_stream(self, frames: Iterable[np.ndarray]) -> Iterator:
        """`boundaries` (or the equivalent work) run in the calling thread alone, for frame_cost."""
        return self.boundaries(frames)

    @abc.abstractmethod
    def boundaries(self, frames: Iterable[np.ndarray]) -> Iterator[int]:
        """Yield the index of the first frame of each new shot (never 0), increasing.

        Args:
            frames: HxWx3 uint8 RGB arrays of size `frame_size`, in presentation order.

        Returns:
            An iterator that yields each boundary once it is certain; memory stays bounded.
        """


_D = TypeVar("_D", bound=type[ShotDetector])
_REGISTRY: dict[str, type[ShotDetector]] = {}


_register = registrar(_REGISTRY)


def register_detector(name: str, *aliases: str) -> Callable[[_D], _D]:
    """Class decorator: make a detector constructible by `get_detector(name)` (or an alias)."""

    def wrap(cls: _D) -> _D:
        cls.name = name
        return _register(name, *aliases)(cls)

    return wrap


def _load_builtin() -> None:
    import_modules("mediafm.shots")


def available_detectors() -> list[str]:
    """Names of the registered detectors, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def detector_class(name: str) -> type[ShotDetector]:
    """The class registered as `name` (or an alias)."""
    _load_builtin()
    return lookup(_REGISTRY, name, "shot detector")


def get_detector(name: str, **kwargs) -> ShotDetector:
    """Construct the detector registered as `name`; kwargs go to its constructor.

    Raises ModelUnavailableError when its runtime or weights are not installed.
    """
    cls = detector_class(name)
    reason = cls.check()
    if reason:
        raise ModelUnavailableError(None, f"shot detector {cls.name!r} is not available: {reason}")
    return cls(**kwargs)


def shots_from_boundaries(boundaries: Iterable[int], frame_pts: Sequence[float], end_s: float) -> list[Shot]:
    """Turn boundary indices into shots that tile the title.

    Args:
        boundaries: first frames of new shots (0 and out-of-range values are ignored).
        frame_pts: PTS in seconds of every decoded frame, by frame index.
        end_s: the title's end time (end of the last frame).

    Returns:
        Shots covering frames 0..len(frame_pts)-1; start_s is the PTS of a shot's first frame and
        end_s the PTS of the next shot's first frame (or `end_s` for the last shot).
    """
    n = len(frame_pts)
    if n == 0:
        return []
    starts = [0] + sorted({b for b in boundaries if 0 < b < n})
    shots = []
    for i, s in enumerate(starts):
        last = i + 1 == len(starts)
        e = n - 1 if last else starts[i + 1] - 1
        shots.append(Shot(index=i, start_frame=s, end_frame=e, start_s=float(frame_pts[s]),
                          end_s=float(end_s if last else frame_pts[starts[i + 1]])))
    return shots


def detect_shots(path: str | Path, detector: str | ShotDetector = "transnetv2",
                 show_progress: bool = False) -> list[Shot]:
    """Decode `path` and return its shots (convenience for scripts and the CLI).

    Args:
        path: a video file.
        detector: a registry name or a constructed detector.
        show_progress: show a tqdm bar of decoded frames on stderr.

    Raises:
        MediaDecodeError: the file cannot be decoded (MissingStreamError: it has no video).
    """
    from tqdm import tqdm

    from mediafm.media.decode import iter_frames, probe

    info = probe(path)
    det = get_detector(detector) if isinstance(detector, str) else detector
    pts = array("d")  # 8 bytes per frame: all that is kept per frame
    expected = round(info.duration_s * float(info.avg_rate)) if info.avg_rate else None
    bar = tqdm(total=expected, unit="frame", desc=Path(path).name, disable=not show_progress, leave=False)

    threads = det.input_threads  # read in this thread: frames() may run in the detector's

    def frames() -> Iterator[np.ndarray]:
        for f in iter_frames(path, size=det.frame_size, threads=threads):
            pts.append(f.pts_s)
            bar.update()
            yield f.image

    try:
        cuts = list(det.boundaries(frames()))
    finally:
        bar.close()
    if not pts:
        return []
    # The last frame lasts as long as the one before it (a truncated file's declared duration lies).
    end_s = pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else (1 / float(info.avg_rate) if info.avg_rate else 0.0))
    return shots_from_boundaries(cuts, pts, end_s)
