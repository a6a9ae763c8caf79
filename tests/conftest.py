"""Shared fixtures. Real media comes from ../shared/media (see its README); tests fail, not skip,
when it is missing, because CI always has it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Keep test runs on 2 cores predictable and offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def _shared_media() -> Path:
    env = os.environ.get("MEDIAFM_SHARED_MEDIA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "media", REPO / "shared" / "media"]
    for c in candidates:
        if (c / "montage.mp4").exists():
            return c
    raise FileNotFoundError(f"shared test media not found in {candidates}; set MEDIAFM_SHARED_MEDIA")


@pytest.fixture(scope="session")
def shared_media() -> Path:
    return _shared_media()


@pytest.fixture(scope="session")
def montage(shared_media) -> Path:
    return shared_media / "montage.mp4"


@pytest.fixture(scope="session")
def montage_truth(shared_media) -> dict:
    return json.loads((shared_media / "truth.json").read_text())
