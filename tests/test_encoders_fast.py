"""The onnxruntime paths of the default video and text encoders: same outputs as the torch /
sentence-transformers reference, and the on-disk ONNX cache (reuse, corrupt file, unwritable
folder). Every test points MEDIAFM_CACHE_DIR at a temp folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mediafm.encoders import onnx_cache
from mediafm.encoders import video_effnet as ve
from mediafm.encoders.base import top_k_names

torch.set_num_threads(2)
IMAGES = np.random.default_rng(1).integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module, so each model is exported once here."""
    d = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(onnx_cache.CACHE_ENV, str(d))
        yield d


@pytest.fixture(scope="module")
def effnet(cache):
    return ve.EfficientNetLite0()


def _onnx_files(folder):
    return sorted((folder / "onnx").glob("*.onnx"))


def _count_exports(monkeypatch, module, attr):
    calls = []
    real = getattr(module, attr)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attr, counted)
    return calls


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "c"))
    assert onnx_cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(onnx_cache.CACHE_ENV)
    assert onnx_cache.cache_dir().parts[-2:] == (".cache", "mediafm")


def test_effnet_onnx_equals_torch(effnet):
    assert effnet.session is not None  # CPU: onnxruntime
    feats, logits = effnet.encode_with_scores(IMAGES)
    net = ve._torch_network()
    with torch.inference_mode():
        ref_feats, ref_logits = (t.numpy() for t in net(torch.from_numpy(IMAGES)))
    assert feats.shape == (5, 1280) and logits.shape == (5, 1000) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and np.isfinite(logits).all()
    assert np.abs(feats - ref_feats).max() < 1e-4 and np.abs(logits - ref_logits).max() < 1e-4
    names = effnet.class_names
    assert top_k_names(logits, names, 3) == top_k_names(ref_logits, names, 3)


def test_effnet_torch_branch_matches(effnet):
    """The branch GPUs take (torch module in `_run`), run here on CPU against the ONNX session."""
    torch_enc = ve.EfficientNetLite0.__new__(ve.EfficientNetLite0)
    torch_enc.__dict__.update(effnet.__dict__, session=None, model=ve._torch_network())
    a, b = effnet.encode(IMAGES[:2]), torch_enc.encode(IMAGES[:2])
    assert np.abs(a - b).max() < 1e-4
    assert effnet.encode(IMAGES[:0]).shape == (0, 1280)


def test_effnet_cache_reused(cache, effnet, monkeypatch):
    (path,) = [p for p in _onnx_files(cache) if p.name.startswith("effnet-lite0-")]
    assert torch.__version__ in path.name and effnet.version in path.name
    mtime = path.stat().st_mtime_ns
    calls = _count_exports(monkeypatch, ve, "_export")
    again = ve.EfficientNetLite0()
    assert calls == [] and path.stat().st_mtime_ns == mtime
    assert np.array_equal(again.encode(IMAGES[:1]), effnet.encode(IMAGES[:1]))


def test_effnet_corrupt_cache_is_reexported(cache, effnet, monkeypatch, tmp_path):
    (good,) = [p for p in _onnx_files(cache) if p.name.startswith("effnet-lite0-")]
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path))
    bad = tmp_path / "onnx" / good.name
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[:1000])  # truncated: what a crash mid-copy would leave
    calls = _count_exports(monkeypatch, ve, "_export")
    enc = ve.EfficientNetLite0()
    assert calls == [1] and bad.stat().st_size == good.stat().st_size
    assert np.abs(enc.encode(IMAGES[:1]) - effnet.encode(IMAGES[:1])).max() < 1e-4
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [good.name]  # no temp files left


def test_unwritable_cache_runs_from_memory(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # the cache path runs through a file: mkdir fails with an OSError
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(blocker / "cache"))
    opened = []

    def open_session(model):
        opened.append(type(model))
        return "session"

    assert onnx_cache.cached_onnx_session("m", lambda: b"onnx-bytes", open_session) == "session"
    assert opened == [bytes]


# ----------------------------------------------------------------------------- text
LONG = " ".join(["the quick brown fox jumps over the lazy dog"] * 40)  # ~360 tokens: cut at 256
MID = " ".join(["supercalifragilistic words"] * 30)  # ~210 tokens: past tokenizer.json's 128
SENTENCES = ["A wolf howls at night.", "", "   ", "x", "  Ein Hund bellt.  ", LONG, MID,
             "Hello, WORLD!! It's 3 a.m.", "日本語のテキスト"]


@pytest.fixture(scope="module")
def minilm(cache):
    from mediafm.encoders.text_minilm import MiniLM

    return MiniLM(batch_size=4)  # small batches: padding and ordering across batches are exercised


def test_minilm_equals_sentence_transformers(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from mediafm.encoders.text_minilm import model_dir

    st = SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)
    assert st.max_seq_length == minilm.max_len == 256
    assert len(minilm.tokenizer.encode(LONG).ids) == 256 < len(st.tokenizer(LONG)["input_ids"])
    ours = minilm.encode(SENTENCES)
    ref = st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32 and np.isfinite(ours).all()
    assert np.abs(ours - ref).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_cache_reused_without_torch_export(cache, minilm, monkeypatch):
    from mediafm.encoders import text_minilm

    (path,) = [p for p in _onnx_files(cache) if p.name.startswith("minilm-l6-")]
    mtime = path.stat().st_mtime_ns
    calls = _count_exports(monkeypatch, text_minilm, "_export_bert")
    again = text_minilm.MiniLM()
    assert calls == [] and path.stat().st_mtime_ns == mtime
    assert np.array_equal(again.encode(SENTENCES[:2]), minilm.encode(SENTENCES[:2]))


# ----------------------------------------------------------------------------- audio
def test_yamnet_chunks_give_the_same_output(monkeypatch):
    from mediafm.encoders import audio_yamnet

    enc = audio_yamnet.YamNet(threads=2)
    waves = [np.random.default_rng(i).normal(0, 0.1, 16_000 * s).astype(np.float32) for i, s in enumerate((1, 3, 7))]
    whole_emb, whole_scores = enc.encode_with_scores(waves)
    monkeypatch.setattr(audio_yamnet, "_CHUNK", 3)  # 22 windows -> 8 passes, the last one partial
    emb, scores = enc.encode_with_scores(waves)
    assert np.abs(emb - whole_emb).max() < 1e-5 and np.abs(scores - whole_scores).max() < 1e-5


def test_yamnet_torch_graph_stays_close_to_onnxruntime():
    """The GPU path without onnxruntime-gpu (the int8 graph simulated in torch, the front end in
    torch), run here on the CPU. Rounding ties in 27 requantisations make it differ from
    onnxruntime's integer kernels about as much as onnxruntime's own float run of the graph does."""
    from mediafm.devices import PinnedStaging
    from mediafm.encoders import audio_yamnet
    from mediafm.encoders.qdq_torch import QDQGraph

    enc = audio_yamnet.YamNet(threads=2, device="cpu")
    sim = audio_yamnet.YamNet.__new__(audio_yamnet.YamNet)
    sim.__dict__.update(enc.__dict__, session=None, graph=QDQGraph(audio_yamnet._prepared_model()[0], "cpu"),
                        staging=PinnedStaging("cpu"))
    waves = [np.random.default_rng(i).normal(0, 0.1, 16_000 * s).astype(np.float32) for i, s in enumerate((1, 3, 7))]
    (a, sa), (b, sb) = enc.encode_with_scores(waves), sim.encode_with_scores(waves)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert b.shape == a.shape and np.isfinite(b).all() and cos.min() > 0.99
    assert np.abs(sa - sb).max() < 0.05 * np.abs(sa).max()


def test_qdq_graph_refuses_operators_it_cannot_run():
    from onnx import TensorProto, helper

    from mediafm.encoders.qdq_torch import QDQGraph
    from mediafm.errors import ModelUnavailableError

    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ModelUnavailableError, match="Sigmoid"):
        QDQGraph(helper.make_model(graph).SerializeToString(), "cpu")


def test_minilm_from_a_local_folder_equals_the_package(minilm, tmp_path):
    """`weights_dir` (EncodeConfig.text_weights): a copy of the model folder gives the same vectors
    and is recorded as where the weights came from."""
    import shutil

    from mediafm.encoders.text_minilm import MiniLM, model_dir

    folder = shutil.copytree(model_dir(), tmp_path / "minilm")
    local = MiniLM(batch_size=4, device="cpu", weights_dir=folder)
    assert np.array_equal(local.encode(SENTENCES[:3]), minilm.encode(SENTENCES[:3]))
    assert local.provenance.file == str(folder.resolve()) and local.provenance.package == ""
