"""Real-media checks of the default encoders and the whole `encode_store` on the shared montage.

The store is built directly with `Store.write_title` from the montage cut at its ground-truth
piece boundaries (truth.json), so these tests do not depend on shot detection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mediafm.encoders.config import EncodeConfig
from mediafm.encoders import descriptors
from mediafm.encoders.encode_store import encode_store
from mediafm.store.catalog import AUDIO_RATE, Store
from mediafm.types import TitleRecord
from mediafm_testing.montage import (
    build_montage_store,
    loo_centroid_accuracy,
    speech_and_other_clips,
)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def montage_store(tmp_path_factory, montage, montage_truth) -> Store:
    store = build_montage_store(tmp_path_factory.mktemp("store"), montage, montage_truth)
    encode_store(store, EncodeConfig(), progress=False)
    return store


def _cos(x: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def _ids(truth: dict) -> dict[str, int]:
    return {p["id"]: p["index"] for p in truth["pieces"]}


def test_video_same_source_shot_closer_than_other_clips(montage_store, montage_truth):
    video = montage_store.features("montage", "video")
    sim = _cos(video)
    ids = _ids(montage_truth)
    for a, b in (("wolf_cry", "wolf_laugh"), ("crystal_far", "crystal_close")):
        ia, ib = ids[a], ids[b]
        others = [sim[ia, j] for j in range(len(sim)) if j not in (ia, ib)]
        assert sim[ia, ib] > max(others), (a, b, sim[ia, ib], max(others))


def test_audio_separates_speech_from_music_and_silence(shared_media):
    from mediafm.encoders import get_encoder

    speech, other = speech_and_other_clips(shared_media)
    assert len(speech) == 6 and len(other) == 13
    enc = get_encoder("audio")
    emb, scores = enc.encode_with_scores(speech + other)
    y = np.array([1] * len(speech) + [0] * len(other))
    assert loo_centroid_accuracy(emb, y) >= 0.9
    # The model's own classifier names speech on the speech clips.
    top = np.argmax(scores, axis=1)
    names = [enc.class_names[i] for i in top]
    assert sum(n == "Speech" for n in names[:len(speech)]) >= len(speech) - 1, names[:len(speech)]


def test_text_embeddings_match_their_own_subtitles(montage_store, montage_truth):
    from mediafm.encoders import get_encoder

    text = montage_store.features("montage", "text")
    present = montage_store.features("montage", "text_present")
    shots = montage_store.shots("montage")
    assert present.sum() == (shots["text"].str.len() > 0).sum()
    assert np.all(text[~present] == 0)
    enc = get_encoder("text")
    queries = enc.encode([u["text"] for u in montage_truth["speech"]])
    for q, u in zip(queries, montage_truth["speech"]):
        own = shots.index[(shots["start_s"] < u["end_s"]) & (shots["end_s"] > u["start_s"])]
        assert int(np.argmax(text @ q)) in set(own)


def test_encode_store_writes_all_columns(montage_store, montage_truth):
    table = montage_store.feature_table("montage")
    n = len(montage_truth["pieces"])
    assert table.num_rows == n
    for col in ("video", "audio", "text", "fused", "video_present", "audio_present", "text_present",
                "video_tags", "audio_tags", "descriptors"):
        assert col in table.column_names
    fused = montage_store.features("montage", "fused")
    assert fused.shape == (n, 1280 + 1024 + 384 + descriptors.DIM) and fused.dtype == np.float32
    d = montage_store.features("montage", "descriptors")
    assert d.shape == (n, descriptors.DIM) and np.isfinite(d).all() and np.abs(d).max() <= 4.0
    # The fused vector's last block is the descriptors, unit-normalised as every block is.
    block = fused[:, -descriptors.DIM:]
    np.testing.assert_allclose(block / np.linalg.norm(block, axis=1, keepdims=True),
                               d / np.linalg.norm(d, axis=1, keepdims=True), atol=1e-5)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    assert montage_store.features("montage", "video_present").all()
    assert montage_store.features("montage", "audio_present").all()
    assert all(len(t) == EncodeConfig().tags_k for t in montage_store.features("montage", "video_tags"))
    enc = montage_store.feature_encoders("montage")
    assert enc["video"]["name"] == "effnet-lite0" and enc["audio"]["dim"] == 1024 and enc["text"]["dim"] == 384
    assert enc["descriptors"] == {"name": "film-descriptors", "version": descriptors.VERSION, "dim": descriptors.DIM}
    meta = montage_store.meta_embedding("montage")
    assert meta is not None and meta.shape == (384,)


def test_encode_store_skips_then_refuses_to_mix(montage_store):
    again = encode_store(montage_store, EncodeConfig(), progress=False)
    assert again.skipped == ["montage"] and not again.encoded
    # Re-encoding with another text encoder replaces the features (the only title) consistently.
    other = encode_store(montage_store, EncodeConfig(text="use-multilingual"), progress=False)
    assert other.encoded == ["montage"]
    assert montage_store.features("montage", "text").shape[1] == 512
    assert montage_store.check_encoders()["text"]["name"] == "use-multilingual"
    # Without the film descriptors: another set, and a fused vector without their block.
    plain = encode_store(montage_store, EncodeConfig(descriptors=False), progress=False)
    assert plain.encoded == ["montage"] and "descriptors" not in montage_store.check_encoders()
    assert montage_store.features("montage", "fused").shape[1] == 1280 + 1024 + 384
    assert "descriptors" not in montage_store.feature_columns("montage")
    encode_store(montage_store, EncodeConfig(), progress=False)  # restore the default set
    assert montage_store.check_encoders()["text"]["name"] == "minilm-l6"


def test_cli_encode_reports_skip(montage_store, capsys):
    from mediafm.cli.main import main

    assert main(["encode", str(montage_store.root)]) == 0
    assert "skipped 1" in capsys.readouterr().out
    assert main(["encode", str(montage_store.root), "--video", "nope"]) == 1


@pytest.mark.slow
def test_asr_fills_text_of_untitled_title(tmp_path, montage, montage_truth):
    store = build_montage_store(tmp_path / "store", montage, montage_truth)
    shots = store.shots("montage")
    shots["text"], shots["text_source"] = "", ""
    store.write_shots("montage", shots)
    encode_store(store, EncodeConfig(asr=True), progress=False)
    shots = store.shots("montage")
    jfk = next(u for u in montage_truth["speech"] if "country" in u["text"])
    i = int(shots.index[(shots["start_s"] <= (jfk["start_s"] + jfk["end_s"]) / 2)].max())
    assert "country" in shots["text"][i].lower() and shots["text_source"][i] == "asr"
    assert set(shots["text_source"]) <= {"asr", ""}
    assert store.features("montage", "text_present")[i]


def _record(tid: str, n_shots: int, has_video: bool, has_audio: bool) -> TitleRecord:
    return TitleRecord(title_id=tid, path=f"/x/{tid}.mp4", source_key=tid, duration_s=4.0, has_video=has_video,
                       has_audio=has_audio, width=224, height=224, n_frames=100 if has_video else 0,
                       n_shots=n_shots, detector="test")


def test_missing_modalities_are_zero_with_flags(tmp_path):
    """A silent video title and an audio-only title without text, encoded in one batch."""
    rng = np.random.default_rng(1)
    store = Store(tmp_path / "s", create=True)
    shots_v = pd.DataFrame({"title_id": "silent", "shot_index": [0, 1], "start_frame": [0, 50],
                            "end_frame": [49, 99], "start_s": [0.0, 2.0], "end_s": [2.0, 4.0],
                            "text": ["A wolf howls.", ""], "text_source": ["subtitle", ""]})
    frames = rng.integers(0, 256, (2, 2, 224, 224, 3), dtype=np.uint8)
    store.write_title(_record("silent", 2, True, False), shots_v, frames, None)
    shots_a = pd.DataFrame({"title_id": "radio", "shot_index": [0, 1], "start_frame": [-1, -1],
                            "end_frame": [-1, -1], "start_s": [0.0, 2.0], "end_s": [2.0, 4.0],
                            "text": ["", None], "text_source": ["", ""]})
    tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(64_000) / AUDIO_RATE) * 32767).astype(np.int16)
    store.write_title(_record("radio", 2, False, True), shots_a, None, tone)
    report = encode_store(store, EncodeConfig(), progress=False)
    assert sorted(report.encoded) == ["radio", "silent"] and report.shots == 4
    v = store.feature_table("silent").to_pydict()
    assert v["video_present"] == [True, True] and v["audio_present"] == [False, False]
    assert v["text_present"] == [True, False]
    assert np.all(store.features("silent", "audio") == 0) and v["audio_tags"] == [[], []]
    a = store.feature_table("radio").to_pydict()
    assert a["video_present"] == [False, False] and a["audio_present"] == [True, True]
    assert a["text_present"] == [False, False] and a["video_tags"] == [[], []]
    assert np.all(store.features("radio", "video") == 0) and np.all(store.features("radio", "text") == 0)
    for tid in ("silent", "radio"):
        np.testing.assert_allclose(np.linalg.norm(store.features(tid, "fused"), axis=1), 1.0, rtol=1e-5)
        assert store.meta_embedding(tid) is None
    # An absent modality leaves its part of the descriptors at 0 (typical), the rest is measured.
    silent, radio = store.features("silent", "descriptors"), store.features("radio", "descriptors")
    audio_part = slice(0, len(descriptors.AUDIO_NAMES))
    video_part = slice(len(descriptors.AUDIO_NAMES), len(descriptors.AUDIO_NAMES) + len(descriptors.VIDEO_NAMES))
    assert np.all(silent[:, audio_part] == 0) and np.any(silent[:, video_part] != 0)
    assert np.all(radio[:, video_part] == 0) and np.any(radio[:, audio_part] != 0)
    assert store.check_encoders()["audio"]["name"] == "yamnet"
