"""End to end on real ingestion: `mediafm ingest` the montage, then search and serve it."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from mediafm.ingest import ingest
from mediafm.ingest.config import IngestConfig
from mediafm.search import search_text
from mediafm.serve.app import create_app
from mediafm.store.catalog import Store


@pytest.mark.slow
def test_ingested_montage_is_searchable_and_served(tmp_path, shared_media, montage_truth):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("montage.mp4", "montage.srt"):
        shutil.copy(shared_media / name, src / name)
    # The fast detector and no encoders keep this to about a minute; text search needs only the
    # shots' subtitle text, and neighbours need features, which are checked to 404 cleanly here.
    ingest([src], tmp_path / "store", IngestConfig(detector="fast"), encode=False, show_progress=False)
    store = Store(tmp_path / "store")
    assert store.title_ids() == ["montage"]
    shots = store.shots("montage")
    for cue in montage_truth["speech"]:
        mid = (cue["start_s"] + cue["end_s"]) / 2
        holder = shots[(shots.start_s <= mid) & (shots.end_s > mid)]
        hits = search_text(store, " ".join(cue["text"].split()[:6]), k=5)
        best = [h for h in hits if h.score == hits[0].score]  # a cue spanning a cut fills several shots
        assert int(holder.shot_index.iloc[0]) in {h.shot_index for h in best}, (cue["text"], hits)
    client = TestClient(create_app(store.root), base_url="http://127.0.0.1", raise_server_exceptions=False)
    detail = client.get("/api/titles/montage").json()
    assert len(detail["shots"]) == len(shots) and detail["embeddings"] == []
    assert client.get("/api/titles/montage/shots/0/thumb.jpg").content[:2] == b"\xff\xd8"
    assert client.get("/api/titles/montage/shots/0/neighbors").status_code == 404  # not encoded yet
    assert client.get("/api/titles/montage/video", headers={"Range": "bytes=0-9"}).status_code == 206
