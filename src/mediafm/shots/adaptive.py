"""Classical shot detector: PySceneDetect's AdaptiveDetector on frames we decode.

It scores each frame by its HSV content change to the previous frame and cuts where that score
stands out against its neighbours' (a rolling ratio), so it is robust to fast motion but, having
no temporal model, it misses most gradual transitions (dissolves, fades). Its value is speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from mediafm.shots.base import ShotDetector, register_detector

# Any rate works: we give PySceneDetect frame numbers and sizes in frames, never seconds.
_NOMINAL_FPS = 25.0


@dataclass(frozen=True)
class AdaptiveConfig:
    """PySceneDetect AdaptiveDetector settings (its own defaults)."""

    threshold: float = 3.0  # adaptive_threshold: score / mean of the neighbours' scores
    min_scene_len: int = 15  # frames
    window_width: int = 2  # neighbours on each side for the rolling average
    min_content_val: float = 15.0  # minimum content change for a cut
    frame_size: tuple[int, int] = (256, 144)  # (width, height); PySceneDetect downscales to ~256 wide too


@register_detector("adaptive", "fast")
class AdaptiveDetector(ShotDetector):
    """PySceneDetect's AdaptiveDetector behind our interface (fast; hard cuts only)."""

    requires = ("scenedetect",)

    def __init__(self, config: AdaptiveConfig | None = None, threshold: float | None = None):
        cfg = config or AdaptiveConfig()
        if threshold is not None:
            cfg = AdaptiveConfig(**{**cfg.__dict__, "threshold": threshold})
        self.config = cfg
        self.frame_size = cfg.frame_size
        self.lookahead = cfg.window_width + cfg.min_scene_len  # decisions come window_width frames late

    def boundaries(self, frames: Iterable[np.ndarray]) -> Iterator[int]:
        from scenedetect.common import FrameTimecode
        from scenedetect.detectors import AdaptiveDetector as _Adaptive

        c = self.config
        det = _Adaptive(adaptive_threshold=c.threshold, min_scene_len=c.min_scene_len,
                        window_width=c.window_width, min_content_val=c.min_content_val)
        for i, rgb in enumerate(frames):
            # OpenCV (and PySceneDetect) expect BGR.
            for tc in det.process_frame(FrameTimecode(i, _NOMINAL_FPS), np.ascontiguousarray(rgb[..., ::-1])):
                if tc.frame_num > 0:
                    yield tc.frame_num
        # AdaptiveDetector decides each frame window_width frames late; nothing is left to flush.
