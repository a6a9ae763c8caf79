"""Clips: time spans of a title, and their embeddings pooled from shot embeddings.

A clip's shots are those whose [start_s, end_s) overlaps [start, end). Embedding kinds:

- `video`, `audio`, `text`, `descriptors`, `fused`: the stored per-shot encoder outputs and film
  descriptors (no context);
- `contextual` ("in context"): the model runs on the whole title, the clip's shots are sliced out
  (read from the store's `contextual/<model_id>/` table, or computed in memory from a model);
- `contextual-isolated`: the model sees only the clip's shots (plus the title metadata, so the
  comparison with `contextual` isolates temporal context).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from mediafm.errors import StoreError
from mediafm.registry import lookup, registrar

EMBEDDING_KINDS = ("video", "audio", "text", "descriptors", "fused", "contextual-isolated", "contextual")
STORED_KINDS = ("video", "audio", "text", "descriptors", "fused")


@dataclass(frozen=True)
class Clip:
    """A span [start, end) in seconds of the title whose id is `title`."""

    title: str
    start: float
    end: float


class TitleModel(Protocol):
    """What clips need from the contextual model (see mediafm.model)."""

    def embed_title(self, fused: np.ndarray, meta: np.ndarray | None = None, times: np.ndarray | None = None): ...


# ------------------------------------------------------------------ pooling registry
Pooling = Callable[[np.ndarray, np.ndarray], np.ndarray]
POOLINGS: dict[str, Pooling] = {}


register_pooling = registrar(POOLINGS)


@register_pooling("mean")
def _mean(vectors: np.ndarray, overlap_s: np.ndarray) -> np.ndarray:
    return vectors.mean(axis=0)


@register_pooling("max")
def _max(vectors: np.ndarray, overlap_s: np.ndarray) -> np.ndarray:
    return vectors.max(axis=0)


@register_pooling("duration")
def _duration(vectors: np.ndarray, overlap_s: np.ndarray) -> np.ndarray:
    # Weight each shot by how many seconds of it fall inside the clip (a 0.1 s sliver counts little).
    w = np.clip(overlap_s, 0.0, None)
    if w.sum() <= 0:
        return vectors.mean(axis=0)
    return (vectors * (w / w.sum())[:, None]).sum(axis=0)


def pool(vectors: np.ndarray, overlap_s: np.ndarray, pooling: str = "mean") -> np.ndarray:
    return lookup(POOLINGS, pooling, "pooling")(np.asarray(vectors, dtype=np.float32), np.asarray(overlap_s, dtype=np.float64))


# Read-outs of a clip's edges, appended to the pooled vector when a pooling's name ends with their
# suffix ("mean+edges", "mean+cuts"): what a mean of the clip's shots blurs (docs/tasks.md).
EDGES = "+edges"  # the last shot, the change across the cut after it, and the four cut distances
CUTS = "+cuts"  # the four cut distances only
NEAR = "+near+cuts"  # the mean of the shots around the clip, and the four cut distances
NEAR_RADIUS = 2  # shots either side of a clip that its surroundings' mean takes in
EDGE_SCALARS = 4  # the cosine distances at the end of edge_readout (and all of cut_distances)
DEFAULT_POOLING = "mean+cuts"


class _EdgeReadout(NamedTuple):
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (title's shot vectors, clip's shot indices) -> vector
    per_dim: int  # its length is per_dim * D + EDGE_SCALARS for D-dimensional shot vectors


def _split(name: str) -> tuple[str, _EdgeReadout | None]:
    """(registered pooling, the edge read-out its suffix names or None)."""
    for suffix, readout in _BY_LENGTH:
        if name.endswith(suffix):
            return name.removesuffix(suffix), readout
    return name, None


def pooling_names() -> list[str]:
    """Every pooling a clip embedder takes: the registry's, and each with each edge read-out."""
    return sorted(POOLINGS) + [name + suffix for suffix in EDGE_READOUTS for name in sorted(POOLINGS)]


def check_pooling(name: str) -> str:
    """`name` when it is a pooling (ConfigError naming the choices otherwise)."""
    lookup(POOLINGS, _split(name)[0], "pooling")
    return name


def pooled_dim(dim: int, pooling: str) -> int:
    """Length of a clip's vector pooled from `dim`-d shot vectors (+edges adds 2 * dim + 4, +cuts 4)."""
    readout = _split(pooling)[1]
    return dim if readout is None else (1 + readout.per_dim) * dim + EDGE_SCALARS


def pooled_blocks(blocks: tuple[int, ...], pooling: str) -> tuple[int, ...]:
    """The parts of a clip's vector pooled from shot vectors made of `blocks`: the pooled blocks,
    then for +edges the last shot's and the change's, and the cut distances as one part."""
    readout = _split(pooling)[1]
    return tuple(blocks) if readout is None else tuple(blocks) * (1 + readout.per_dim) + (EDGE_SCALARS,)


def readout_blocks(cfg, input_blocks: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The parts of a model's per-shot vector (cfg: its ModelConfig), sizes in order: the read-out's
    parts (Readout.part_sizes), a `NAME+input` read-out's input split into `input_blocks` when
    they make up input_dim."""
    from mediafm.model.transformer import READOUTS

    parts = READOUTS[cfg.readout].part_sizes(cfg)
    if cfg.readout.endswith("+input") and input_blocks and sum(input_blocks) == cfg.input_dim:
        return (*input_blocks, *parts[1:])
    return parts


def shot_dim(pooled: int, pooling: str) -> int:
    """The shot vectors' dimension behind a `pooled`-long clip vector (pooled_dim's inverse)."""
    readout = _split(pooling)[1]
    return pooled if readout is None else (pooled - EDGE_SCALARS) // (1 + readout.per_dim)


def edge_readout(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[2 * D + 4] what happens at a clip's end, from the shot vectors of its title ([n, D]) and its
    shots' indices (contiguous): its last shot's vector, how much each dimension changes across
    the cut after it (|last - next|), and `cut_distances`.

    A clip's mean blurs its edges, and a linear probe on two concatenated vectors cannot compute
    how much changes between them; an ad break or a clip's appeal turns on both. Only the clip's
    shots and the two shots either side of it count: changing a shot further away leaves it as is.
    A clip at a title's end (or embedded without its title) has no shot after it: zeros there."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n, last = len(vectors), int(idx[-1])
    after = vectors[last + 1] if last + 1 < n else np.zeros_like(vectors[last])
    change = np.abs(vectors[last] - after) if last + 1 < n else np.zeros_like(after)
    return np.concatenate([vectors[last], change, cut_distances(vectors, idx)])


def cut_distances(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[4] the cosine distance across the cut after a clip and across the cut before it, between
    single shots and between the means of two shots either side (`vectors`: its title's shots,
    `idx`: the clip's, contiguous). Four numbers a linear probe cannot compute from the pooled
    vector, and about half of what the whole edge read-out adds to ad relevancy, without its cost
    to the other tasks (docs/narrative-benchmark.md, "Clip read-out")."""
    vectors = np.asarray(vectors, dtype=np.float32)
    first, last = int(idx[0]), int(idx[-1])
    return np.asarray([_cut_distance(vectors, last + 1, 1), _cut_distance(vectors, last + 1, 2),
                       _cut_distance(vectors, first, 1), _cut_distance(vectors, first, 2)], dtype=np.float32)


def near_readout(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[D + 4] a clip's surroundings: the mean of its shots and of the NEAR_RADIUS shots either side
    of it, then `cut_distances`. What a clip of two or three shots says about its scene's mood
    shows more clearly over the few shots around it; a linear probe cannot average shots the
    clip does not contain. Shots further away leave it as is."""
    vectors = np.asarray(vectors, dtype=np.float32)
    first, last = int(idx[0]), int(idx[-1])
    near = vectors[max(0, first - NEAR_RADIUS):last + NEAR_RADIUS + 1].mean(axis=0)
    return np.concatenate([near, cut_distances(vectors, idx)])


EDGE_READOUTS: dict[str, _EdgeReadout] = {CUTS: _EdgeReadout(cut_distances, 0), EDGES: _EdgeReadout(edge_readout, 2),
                                          NEAR: _EdgeReadout(near_readout, 1)}
# Longest suffix first, so "+near+cuts" is not read as "+cuts"; sorted once, not per clip.
_BY_LENGTH = sorted(EDGE_READOUTS.items(), key=lambda kv: -len(kv[0]))


def _cut_distance(vectors: np.ndarray, cut: int, width: int) -> float:
    """1 - cosine between the mean of the `width` shots before the cut before shot `cut` and of the
    `width` after it (TextTiling's change, Hearst 1997); 0 where the cut is the title's edge."""
    if cut <= 0 or cut >= len(vectors):
        return 0.0
    left = vectors[max(0, cut - width):cut].mean(axis=0)
    right = vectors[cut:cut + width].mean(axis=0)
    norm = float(np.linalg.norm(left) * np.linalg.norm(right))
    return 1.0 - float(left @ right) / norm if norm > 0 else 0.0


# ------------------------------------------------------------------ shot selection
def clip_shots(starts: np.ndarray, ends: np.ndarray, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the shots overlapping the clip, and each one's overlap in seconds.

    A clip that falls inside no shot (e.g. past the title's end) gets the nearest shot, so every
    clip has an embedding; the overlap reported for it is 0.
    """
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    overlap = np.minimum(ends, clip.end) - np.maximum(starts, clip.start)
    idx = np.flatnonzero(overlap > 0)
    if len(idx) == 0:
        mid = 0.5 * (clip.start + clip.end)
        nearest = int(np.argmin(np.abs(0.5 * (starts + ends) - mid)))
        return np.array([nearest]), np.array([0.0])
    return idx, overlap[idx]


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor from the model
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


# ------------------------------------------------------------------ embedding
@dataclass
class ClipEmbedder:
    """Embeds clips of one store with one embedding kind; caches per-title arrays.

    `model` is needed for `contextual-isolated`, and for `contextual` when the store holds no
    contextual table for `model_id` (then the title is embedded in memory).
    """

    store: object  # mediafm.store.catalog.Store (duck-typed so tests can pass a fake)
    kind: str = "fused"
    pooling: str = DEFAULT_POOLING
    model: TitleModel | None = None
    model_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EMBEDDING_KINDS:
            raise ValueError(f"unknown embedding {self.kind!r}; choose one of {', '.join(EMBEDDING_KINDS)}")
        check_pooling(self.pooling)
        if self.kind == "contextual-isolated" and self.model is None:
            raise StoreError(getattr(self.store, "root", None), "contextual-isolated embeddings need a model (--model DIR)")
        self._time_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._vectors: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, store_root, kind: str = "fused", model_dir=None, pooling: str = DEFAULT_POOLING,
             model_id: str | None = None) -> ClipEmbedder:
        """An embedder over a store path; loads the model from `model_dir` when given, else reads
        `model_id`'s contextual table (default: the store's only one)."""
        from mediafm.store.catalog import Store

        store = Store(store_root)
        model = None
        if kind in STORED_KINDS:
            return cls(store, kind, pooling)
        if model_dir is not None:
            from mediafm.model import load_pretrained
            from mediafm.training.embed import model_identity

            model, model_id = load_pretrained(model_dir), model_identity(model_dir)["model_id"]
        elif kind == "contextual-isolated":
            raise StoreError(store.root, "contextual-isolated embeddings need a model (--model DIR)")
        else:
            model_id = store.resolve_model(model_id)  # raises with the list of models when ambiguous
        return cls(store, kind, pooling, model, model_id)

    def _times(self, title: str, idx: np.ndarray | None, relative: bool) -> np.ndarray | None:
        """[n, 2] (start_s, duration_s) for models trained with time features, else None."""
        cfg = getattr(self.model, "config", None)
        if not getattr(cfg, "time_features", False):
            return None
        starts, ends = self._shot_times(title)
        times = np.stack([starts, ends - starts], axis=1).astype(np.float32)
        if idx is not None:
            times = times[idx]
        if relative and len(times):
            times[:, 0] -= times[0, 0]  # an isolated clip starts at 0: no position leak from the title
        return times

    def _shot_times(self, title: str) -> tuple[np.ndarray, np.ndarray]:
        if title not in self._time_cache:
            shots = self.store.shots(title)
            self._time_cache[title] = (shots["start_s"].to_numpy(float), shots["end_s"].to_numpy(float))
        return self._time_cache[title]

    def _title_vectors(self, title: str) -> np.ndarray:
        """Per-shot vectors of the whole title for every kind except contextual-isolated."""
        if title not in self._vectors:
            if self.kind in STORED_KINDS:
                v = self.store.features(title, self.kind)
            elif self.model is not None and not self.has_stored_contextual(title):
                v = _as_numpy(self.model.embed_title(self.store.features(title, "fused"), self.store.meta_embedding(title),
                                                     self._times(title, None, relative=False)))
            else:
                v = self.store.contextual(title, self.model_id)
            self._vectors = {title: np.asarray(v, dtype=np.float32)}  # one title cached: clips come sorted by title
        return self._vectors[title]

    def shot_vectors(self, title: str) -> np.ndarray:
        """[n_shots, D] per-shot vectors of a whole title (every kind but contextual-isolated, which
        has no per-title vectors: each clip is embedded on its own)."""
        if self.kind == "contextual-isolated":
            raise StoreError(getattr(self.store, "root", None), "contextual-isolated embeddings exist per clip only, not per shot")
        return self._title_vectors(title)

    def has_stored_contextual(self, title: str) -> bool:
        """The store holds this title's contextual embeddings from `model_id`."""
        if self.model_id is None:
            return False
        return (self.store.contextual_dir(self.model_id) / "shots" / f"{title}.parquet").exists()

    def embed(self, clip: Clip) -> np.ndarray:
        if not self.store.has_title(clip.title):
            raise StoreError(getattr(self.store, "root", None), f"labels name title {clip.title!r}, which is not in the store")
        idx, overlap = clip_shots(*self._shot_times(clip.title), clip)
        if self.kind == "contextual-isolated":
            fused = self.store.features(clip.title, "fused")[idx]
            title = _as_numpy(self.model.embed_title(fused, self.store.meta_embedding(clip.title),
                                                     self._times(clip.title, idx, relative=True)))
            idx = np.arange(len(idx))  # the clip's own shots are all it has
        else:
            title = self._title_vectors(clip.title)
        base, readout = _split(self.pooling)
        pooled = pool(title[idx], overlap, base)
        return pooled if readout is None else np.concatenate([pooled, readout.fn(title, idx)])

    def blocks(self, width: int, title: str) -> tuple[int, ...]:
        """The parts of this embedding's `width`-long clip vectors, sizes in order, for probes that
        weigh each part equally (ProbeConfig.blocks): fused's modality blocks (from `title`'s
        encoder record), a `NAME+input` read-out's input blocks and its own part, a pooling's edge
        parts. One part when the records do not add up to the width."""
        dim = shot_dim(width, self.pooling)
        shot: tuple[int, ...] = (dim,)
        fused = self._fused_blocks(title)
        if self.kind == "fused" and sum(fused) == dim:
            shot = fused
        elif self.kind in ("contextual", "contextual-isolated"):
            cfg = self._model_config()
            if cfg is not None and cfg.embed_dim == dim:
                shot = readout_blocks(cfg, fused)
        blocks = pooled_blocks(shot, self.pooling)
        return blocks if sum(blocks) == width else (width,)

    def probe_config(self, config, X: np.ndarray, title: str):
        """`config` (a ProbeConfig) with the blocks of X, this embedding's clip vectors of `title`'s
        clips, so that the probe weighs each part equally."""
        from dataclasses import replace

        return replace(config, blocks=self.blocks(int(X.shape[1]), title))

    def _fused_blocks(self, title: str) -> tuple[int, ...]:
        from mediafm.encoders.fusion import block_dims

        return block_dims(self.store.feature_encoders(title) if hasattr(self.store, "feature_encoders") else {})

    def _model_config(self):
        """The contextual model's ModelConfig: the loaded model's, or the one its stored embeddings
        record (None when neither is readable)."""
        if self.model is not None:
            return getattr(self.model, "config", None)
        import json

        from mediafm.model.transformer import ModelConfig

        try:
            info = json.loads((self.store.contextual_dir(self.model_id) / "model.json").read_text())
            return ModelConfig.from_dict(info["config"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def embed_many(self, clips: list[Clip], progress: bool = False) -> np.ndarray:
        """[N, D] embeddings in the order of `clips` (computed title by title to reuse caches)."""
        order = sorted(range(len(clips)), key=lambda i: clips[i].title)
        out: list[np.ndarray | None] = [None] * len(clips)
        it = order
        if progress:
            from tqdm import tqdm
            it = tqdm(order, desc=f"embed clips ({self.kind})", unit="clip", leave=False)
        for i in it:
            out[i] = self.embed(clips[i])
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)
