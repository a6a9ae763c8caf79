"""Shared fixtures. Real media lives in tests/media (CC/PD clips with exact ground truth; see its
README.md and ATTRIBUTION.md); everything else is generated here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Keep test runs on 2 cores predictable and offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"


def _shared_media() -> Path:
    # MEDIAFM_SHARED_MEDIA points the suite at another copy of the same set.
    root = Path(os.environ.get("MEDIAFM_SHARED_MEDIA", MEDIA))
    if not (root / "montage.mp4").exists():
        raise FileNotFoundError(f"test media not found in {root} (montage.mp4 missing)")
    return root


@pytest.fixture(scope="session")
def shared_media() -> Path:
    return _shared_media()


@pytest.fixture(scope="session")
def montage(shared_media) -> Path:
    return shared_media / "montage.mp4"


@pytest.fixture(scope="session")
def montage_truth(shared_media) -> dict:
    return json.loads((shared_media / "truth.json").read_text())
