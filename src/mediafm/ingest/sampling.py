"""Which frames of a shot are kept: a bounded buffer of candidates for the open shot, K picks per shot.

The detector confirms a shot's end some frames after it happens; `FrameSampler` keeps enough
candidates to pick exact frames for the usual shot and a thinned set for long ones, so memory is
bounded however long a shot or title is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from mediafm.ingest.config import IngestConfig

# Frames at the end of every shot that the sampler keeps at full rate whatever the thread timing
# (on top of the detector's look-ahead): shots up to this plus `sample_capacity` frames long get
# their exact centre frames; longer ones the nearest of their thinned candidates.
FULL_RATE_FRAMES = 128


class FrameSampler:
    """Bounded buffer of frame candidates for the open shot; picks K frames per shot.

    The last `recent` frames are kept at full frame rate, because the detector confirms a
    boundary a bounded number of frames after it happens (its look-ahead; TransNetV2's window is
    500 frames): every shot confirmed within that window gets exact picks. Of those, the newest
    `lazy` stay as decoded frames, converted to squares only if picked or when they age
    (conversion costs about as much as decoding, and most frames are never picked); older ones
    are converted (a 224 square is 150 KB, a decoded 4K frame 12 MB). Frames leaving the window
    go to a buffer of at most `capacity` candidates whose density halves each time it fills. So a
    shot of any length holds at most recent + capacity frames. When `lazy` covers recent +
    capacity frames (the usual case below 1080p), older candidates stay decoded too and only the
    K picks are ever converted (measured: 4,895 conversions on an 11-minute 640x360 title, 6 s
    of a 56 s ingest, against 315).

    The picks do not depend on thread timing. The detector may read frames in a thread of its own
    and run up to `lag` frames past a shot's end before the shot is closed, so how many of the
    shot's frames have left the full-rate window (and been thinned) varies from run to run.
    `close` therefore first moves every frame that *could* have left it (the worst case, `lag`
    frames late) the same way; thinning keeps every `stride`-th frame counted from the shot's
    start, so the survivors are a deterministic function of the shot's start, end and `lag`.

    Args:
        k: frames picked per shot (centres of K equal parts).
        recent: frames kept at full rate (should cover the detector's look-ahead).
        capacity: older candidates kept per open shot.
        convert: decoded frame -> [S, S, 3] uint8 (e.g. `lambda f: f.square(224)`).
        lazy: how many of the recent frames may stay unconverted (default: all).
        lag: the most frames pushed past a shot's end before it is closed (the detector's
            look-ahead + 1; default 0: the shot is closed as soon as its last frame is pushed).
    """

    def __init__(self, k: int, recent: int, capacity: int, convert: Callable[[Any], np.ndarray],
                 lazy: int | None = None, lag: int = 0):
        self.k = k
        self.start = 0  # first frame of the open shot
        self.recent: deque[list] = deque()  # [index, frame or square, is_square]
        self.recent_max = recent
        self.lazy_max = recent if lazy is None else lazy
        self.n_lazy = 0  # unconverted entries: always the newest ones of `recent`
        self.older: list[list] = []  # entries like `recent`'s, at the current stride
        self.capacity = capacity
        self.keep_decoded = self.lazy_max >= recent + capacity  # older candidates need no conversion
        self.stride = 1
        self.convert = convert
        self.lag = lag
        self.late = 0  # closes that came later than `lag` (picks may then vary between runs)
        self.converted = 0  # frames converted so far (for benchmarks)

    def _square(self, entry: list) -> np.ndarray:
        if not entry[2]:
            entry[1], entry[2] = self.convert(entry[1]), True
            self.converted += 1
        return entry[1]

    def push(self, index: int, frame: Any) -> None:
        self.recent.append([index, frame, False])
        self.n_lazy += 1
        if len(self.recent) > self.recent_max:
            self._age()
        if self.n_lazy > self.lazy_max:
            self._square(self.recent[len(self.recent) - self.n_lazy])
            self.n_lazy -= 1

    def _age(self) -> None:
        """Move the oldest full-rate frame to the thinned buffer (or drop it)."""
        entry = self.recent.popleft()
        self.n_lazy = min(self.n_lazy, len(self.recent))
        idx = entry[0]
        if idx >= self.start and (idx - self.start) % self.stride == 0:
            if not self.keep_decoded:
                self._square(entry)
            self.older.append(entry)
            if len(self.older) > self.capacity:
                self.stride *= 2
                self.older = [c for c in self.older if (c[0] - self.start) % self.stride == 0]

    def close(self, end: int) -> np.ndarray:
        """Finish the open shot at frame `end` (inclusive): its K frames, [K, S, S, 3]."""
        if self.recent and self.recent[-1][0] > end + self.lag:
            self.late += 1
        # Age what would have aged had the shot been closed `lag` frames late (see class doc).
        limit = min(end, end + self.lag - self.recent_max)
        while self.recent and self.recent[0][0] <= limit:
            self._age()
        s = self.start
        pool = [e for e in self.older if s <= e[0] <= end]
        pool += [e for e in self.recent if s <= e[0] <= end]
        if not pool:  # only if the detector lagged beyond `recent`: nearest frames instead
            pool = self.older + list(self.recent)
        if not pool:
            raise RuntimeError("FrameSampler.close called before any frame was pushed")
        idx = np.array([e[0] for e in pool])
        n = end - s + 1
        # Centre of the k-th of K equal parts, as a frame index.
        targets = s + (np.arange(self.k) + 0.5) * n / self.k - 0.5
        out = [self._square(pool[int(np.argmin(np.abs(idx - t)))]) for t in targets]
        self.older = [c for c in self.older if c[0] > end]
        while self.recent and self.recent[0][0] <= end:
            self.recent.popleft()
        self.n_lazy = min(self.n_lazy, len(self.recent))
        self.start, self.stride = end + 1, 1
        return np.stack(out)


def recent_frames(det, config: IngestConfig) -> int:
    """Frames kept at full rate: the detector's look-ahead plus FULL_RATE_FRAMES, or the config's value.

    `ShotDetector.lookahead` says how late a detector may confirm a boundary.
    """
    if config.recent_frames:
        return config.recent_frames
    return max(64, int(det.lookahead) + 1 + FULL_RATE_FRAMES)


def lazy_frames(info, config: IngestConfig) -> int:
    """Decoded frames left unconverted, within `config.recent_bytes` (YUV 4:2:0 frame size)."""
    frame_bytes = max(1, info.width * info.height * 3 // 2)
    return max(2 * config.frames_per_shot, config.recent_bytes // frame_bytes)
