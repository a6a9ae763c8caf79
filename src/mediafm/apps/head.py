"""A trained head on disk: HEAD_DIR/card.json (what it is) + HEAD_DIR/weights-<sha>.npz (arrays).

The weights are plain arrays in an .npz read with allow_pickle=False, so loading a head runs no
code from the file. The weights file is named by its content hash and written first; card.json,
which names it, is written last (atomically): a crash mid-save leaves the previous head intact,
and a card never points at weights it was not written with.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mediafm.errors import MediafmError
from mediafm.store.atomic import atomic_path, write_json_atomic
from mediafm.evaluation.clips import pooled_dim
from mediafm.evaluation.kinds import TASK_KINDS, TaskKind
from mediafm.evaluation.probes import LINKS, LinearHead

HEAD_FORMAT = "mediafm-head"
HEAD_VERSION = 1
CARD = "card.json"


class HeadError(MediafmError):
    """A head folder is missing, corrupt, or does not fit the store it is applied to."""


@dataclass(frozen=True)
class EmbeddingSpec:
    """The embedding space a head was trained in; applying it elsewhere is refused."""

    kind: str  # mediafm.evaluation.clips.EMBEDDING_KINDS
    pooling: str  # shots -> clip
    dim: int
    model_id: str | None  # contextual kinds: the model whose embeddings were used
    encoders: dict  # the store's encoder set (name, version, dim per modality)


@dataclass(frozen=True)
class HeadCard:
    task: TaskKind
    classes: tuple[str, ...]  # output columns (multiclass, multilabel), ("0", "1") binary, () rank
    embedding: EmbeddingSpec
    probe: str  # mediafm.evaluation.probes.PROBES name
    c: float  # inverse regularisation of the saved weights
    metric: str  # reported on grouped CV over titles
    value: float
    ci_low: float
    ci_high: float
    folds: int
    n_clips: int  # training rows (cuts for scene heads)
    titles: tuple[str, ...]  # titles of the training rows
    clip_s: tuple[float, float, float]  # min, median, max training clip length in seconds
    thresholds: tuple[float, ...] = ()  # per output column: best F1 on CV scores (classification)
    cv_f1: tuple[float, ...] = ()  # that F1
    window: int = 0  # scene heads: shots on each side of a cut
    labels: str = ""  # the labels file
    store: str = ""  # the store it was trained on
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    mediafm_version: str = ""

    @property
    def n_titles(self) -> int:
        return len(self.titles)

    @property
    def input_dim(self) -> int:
        """Width of the head's input: the clip's pooled embedding, or [|L - R|, L * R] of the shots'
        for scene heads."""
        return 2 * self.embedding.dim if self.task == "scenes" else pooled_dim(self.embedding.dim, self.embedding.pooling)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n_titles"] = self.n_titles
        return d

    @classmethod
    def from_dict(cls, d: dict, path: Path | None = None) -> HeadCard:
        try:
            emb = EmbeddingSpec(**d["embedding"])
            fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "embedding"}
            for k in ("classes", "titles", "clip_s", "thresholds", "cv_f1"):
                if k in fields:
                    fields[k] = tuple(fields[k])
            card = cls(embedding=emb, **fields)
        except (KeyError, TypeError) as exc:
            raise HeadError(path, f"malformed head card ({exc})") from None
        if card.task not in TASK_KINDS:
            raise HeadError(path, f"unknown task {card.task!r} in head card")
        return card


@dataclass(frozen=True)
class TrainedHead:
    card: HeadCard
    linear: LinearHead
    name: str = ""  # the folder name once saved/loaded

    def score(self, X: np.ndarray) -> np.ndarray:
        """Scores of [N, D] embeddings: [N] (binary: P(1) or its ridge score, rank) or [N, K]."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.linear.dim:
            raise HeadError(None, f"head {self.name or ''} expects {self.linear.dim}-d inputs "
                            f"({self.card.embedding.kind} embeddings), got shape {X.shape}")
        return self.linear(X)


def save_head(head: TrainedHead, out_dir: str | Path) -> Path:
    """Write the head into `out_dir` (created; an existing head there is replaced)."""
    out = Path(out_dir)
    check_head_dir(out)
    buf = io.BytesIO()
    np.savez(buf, link=np.array(head.linear.link), **head.linear.arrays())
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    weights = f"weights-{digest[:16]}.npz"
    with atomic_path(out / weights) as tmp:
        tmp.write_bytes(data)
    from mediafm import __version__

    card = {"format": HEAD_FORMAT, "version": HEAD_VERSION, "weights": weights, "weights_sha256": digest,
            **head.card.to_dict(), "mediafm_version": __version__}
    write_json_atomic(card, out / CARD)
    for old in out.glob("weights-*.npz"):  # earlier heads saved here
        if old.name != weights:
            old.unlink(missing_ok=True)
    return out


def check_head_dir(out: Path) -> None:
    """Refuse to write a head over a folder that holds something else."""
    if out.exists() and not out.is_dir():
        raise HeadError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / CARD).exists():
        raise HeadError(out, "folder is not empty and holds no head (card.json); choose another --out")


def load_head(head_dir: str | Path) -> TrainedHead:
    """Read a head saved by `save_head`; HeadError names the folder when anything does not fit."""
    d = Path(head_dir)
    card_file = d / CARD
    if not card_file.exists():
        raise HeadError(d, "not a head folder (no card.json); train one with `mediafm fit`")
    try:
        raw = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HeadError(card_file, f"unreadable head card ({exc})") from None
    if raw.get("format") != HEAD_FORMAT:
        raise HeadError(card_file, "not a mediafm head card")
    if raw.get("version") != HEAD_VERSION:
        raise HeadError(card_file, f"head format version {raw.get('version')} (this mediafm reads {HEAD_VERSION})")
    card = HeadCard.from_dict(raw, card_file)
    weights = d / str(raw.get("weights", ""))
    if not raw.get("weights") or not weights.is_file():
        raise HeadError(d, f"weights file {raw.get('weights')!r} named by card.json is missing")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != raw.get("weights_sha256"):
        raise HeadError(weights, "weights do not match the hash in card.json (corrupt or replaced)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("mean", "scale", "coef", "intercept", "link")}
    except (KeyError, ValueError, OSError) as exc:
        raise HeadError(weights, f"unreadable weights ({exc})") from None
    link = str(arrays.pop("link"))
    if link not in LINKS:
        raise HeadError(weights, f"unknown link {link!r}")
    linear = LinearHead(**arrays, link=link)
    if linear.dim != card.input_dim or len(linear.scale) != linear.dim or linear.coef.shape[0] != linear.dim:
        raise HeadError(weights, f"weights are for {linear.dim}-d inputs, the card says {card.input_dim}")
    return TrainedHead(card, linear, d.resolve().name)
