"""aiSFX (ISMIR 2022 cross-dataset sound-effects CNN, 512-d) from the `aisfx` wheel.

The model sees 100-frame blocks (~2.3 s) of a 96-band log-mel spectrogram of 44.1 kHz audio.
`aisfx` computes it with librosa (pinned to 0.9.2) or essentia, neither of which we install;
`log_mel` reproduces the package's librosa path in numpy (Hann 2048 / hop 1024, centred frames,
power spectrum, HTK mel with unit-sum filters, log10(1e4 x + 1), the paper's min/max scaling).
Our store keeps 16 kHz audio, so the input is resampled to 44.1 kHz and the bands above 8 kHz
are empty: a handicap against the model's training data (see docs/encoders.md).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mediafm.encoders.base import (Provenance, WindowedAudioEncoder, package_file_reason, register_encoder,
                                   torch_device)

MODEL_RATE = 44_100
N_FFT, HOP, N_MELS, BLOCK = 2048, 1024, 96, 100
SPEC_MAX = 9.457798957824707  # the paper's normalisation constant (aisfx.preprocessing)
# Samples of 16 kHz input that give exactly BLOCK centred frames after resampling.
WINDOW_16K = int(np.ceil((BLOCK - 1) * HOP * 16_000 / MODEL_RATE))


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[1025, 96] HTK mel filters over 0-22,050 Hz, each summing to 1 (librosa norm=1.0)."""
    freqs = np.linspace(0, MODEL_RATE / 2, N_FFT // 2 + 1)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    pts = 700.0 * (10 ** (np.linspace(mel(0.0), mel(MODEL_RATE / 2), N_MELS + 2) / 2595.0) - 1.0)
    fdiff = np.diff(pts)
    ramps = pts[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return w.T.astype(np.float32)


def log_mel(wave_44k: np.ndarray) -> np.ndarray:
    """[T, 96] scaled log-mel frames of one 44.1 kHz waveform."""
    peak = float(np.max(np.abs(wave_44k))) or 1.0
    y = np.pad(wave_44k / peak, N_FFT // 2)  # librosa center=True with zero padding
    n = 1 + (len(y) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(y[idx].astype(np.float32) * win, axis=-1)) ** 2
    return (np.log10(power @ mel_filterbank() * 1e4 + 1.0) / SPEC_MAX).astype(np.float32)


@register_encoder("audio", "aisfx")
class AiSFX(WindowedAudioEncoder):
    requires = ("torch", "scipy.signal")
    static_dim = 512
    static_provenance = Provenance(
        package="aisfx==0.1.2", file="aisfx/models/checkpoint.pth", license="CC-BY-4.0 (weights); MIT (code)",
        source="Ma et al., ISMIR 2022, X-Sequential-CE model", no_deps=True)
    version = "0.1.2"
    window_s = WINDOW_16K / 16_000
    hop_s = window_s / 2  # the paper's 0.5 block hop

    @classmethod
    def check(cls) -> str:
        return super().check() or package_file_reason("aisfx", "models/checkpoint.pth")

    def __init__(self) -> None:
        import importlib.util

        import torch

        from mediafm.encoders.base import package_dir

        # aisfx/__init__ is empty, but aisfx.inference imports librosa-era helpers: load cnn2d alone.
        spec = importlib.util.spec_from_file_location("_aisfx_cnn2d", package_dir("aisfx") / "models" / "cnn2d.py")
        cnn2d = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cnn2d)
        self.device = torch_device()
        # A (state_dict, {dataset: (numpy int, count)}) tuple pickled by the authors: loaded with
        # weights_only=True and an allow-list of exactly the numpy types it holds, so no code runs.
        import numpy as np

        allowed = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, np.dtypes.Int64DType]
        with torch.serialization.safe_globals(allowed):
            weights, ds_dict = torch.load(package_dir("aisfx") / "models" / "checkpoint.pth", map_location="cpu",
                                          weights_only=True)
        model = cnn2d.CrossNet(cnn2d.EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
        model.load_state_dict(weights)
        self.net = model.embedding_net.eval().to(self.device)
        self.dim = 512
        self.provenance = self.static_provenance

    def _embed_windows(self, windows: np.ndarray) -> tuple[np.ndarray, None]:
        import torch
        from scipy.signal import resample_poly

        up = resample_poly(windows, MODEL_RATE // 100, 160, axis=1)  # 16 kHz -> 44.1 kHz (441/160)
        specs = np.stack([log_mel(w)[:BLOCK] for w in up])
        with torch.inference_mode():
            emb = self.net(torch.from_numpy(specs).to(self.device)).float().cpu().numpy()
        return emb, None
