"""A clip head over a whole catalog, and which clips to label next (pure compute: arrays in, arrays out).

The explorer's tag loop (mediafm.serve.workspace) and benchmarks/label_loop.py use the same
functions. A head from `mediafm fit` is linear in the mean of a clip's shot vectors
(`LinearHead`: link(((z - mean) / scale) @ coef + intercept)), so a clip's raw score is the mean
of its shots' projections: the catalog is projected once per fitted head ([N shots] numbers) and
every candidate clip is scored from a cumulative sum, in well under a second for 100 titles,
where embedding each clip would read and pool D-dimensional vectors per clip.

Which clips to label next (`suggest`): the candidates whose score lies nearest the head's decision
threshold (uncertainty sampling, Lewis and Gale 1994), taken one per title in a first pass and
never two near-duplicates (cosine above `max_similarity`), so a batch spreads over the catalog
rather than asking about one scene ten times (uncertainty with diversity: Brinker 2003).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from mediafm.apps.head import HeadError, TrainedHead

# Before a head is worth fitting: labels from this many titles (grouped CV needs 3) and at least
# this many of each answer.
MIN_TITLES = 3
MIN_EACH = 3


@dataclass(frozen=True, eq=False)
class ShotTable:
    """Every shot of a catalog in one array: title i's shots are rows offsets[i]:offsets[i + 1]."""

    titles: tuple[str, ...]
    offsets: np.ndarray  # [T + 1]
    starts: np.ndarray  # [N] shot start seconds
    ends: np.ndarray  # [N]
    vectors: np.ndarray  # [N, D] (float16 keeps a large catalog in memory; scores are float64)

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.titles) + 1 or self.offsets[-1] != len(self.vectors):
            raise ValueError("offsets do not match the titles and vectors")

    @classmethod
    def build(cls, parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], dtype=np.float16) -> ShotTable:
        """From (title, starts, ends, vectors) per title."""
        sizes = [len(p[1]) for p in parts]
        dim = parts[0][3].shape[1] if parts else 0
        return cls(tuple(p[0] for p in parts), np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   np.concatenate([p[1] for p in parts]) if parts else np.zeros(0),
                   np.concatenate([p[2] for p in parts]) if parts else np.zeros(0),
                   np.concatenate([np.asarray(p[3], dtype) for p in parts]) if parts else np.zeros((0, dim), dtype))

    def title_of(self, rows: np.ndarray) -> np.ndarray:
        """[M] title index of each global shot row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def index(self, title: str) -> int:
        try:
            return self.titles.index(title)
        except ValueError:
            raise KeyError(title) from None


@dataclass(frozen=True, eq=False)
class Candidates:
    """Clips of `length` consecutive shots every `stride` shots in every title (global shot rows)."""

    first: np.ndarray  # [M] first shot row
    last: np.ndarray  # [M] last shot row (inclusive)
    title: np.ndarray  # [M] title index

    def __len__(self) -> int:
        return len(self.first)


def candidates(table: ShotTable, length: int, stride: int | None = None) -> Candidates:
    """Every run of `length` shots (fewer in a shorter title: the whole title) every `stride`
    shots (default: half the length), the last run of each title ending at its last shot."""
    length = max(1, int(length))
    stride = max(1, int(stride or (length + 1) // 2))
    firsts, titles = [], []
    for t in range(len(table.titles)):
        a, b = int(table.offsets[t]), int(table.offsets[t + 1])
        if b <= a:
            continue
        n = b - a
        starts = list(range(0, max(1, n - length + 1), stride))
        if starts[-1] != max(0, n - length):
            starts.append(max(0, n - length))
        firsts += [a + s for s in starts]
        titles += [t] * len(starts)
    first = np.asarray(firsts, np.int64)
    title = np.asarray(titles, np.int64)
    last = np.minimum(first + length - 1, table.offsets[title + 1] - 1) if len(first) else first
    return Candidates(first, last, title)


def linear_parts(head: TrainedHead) -> tuple[np.ndarray, float, str]:
    """(w [D], b, link) with the head's raw score z = x @ w + b for one-output heads (binary, rank)."""
    lin = head.linear
    coef = np.asarray(lin.coef, np.float64)
    if coef.ndim != 1:
        raise HeadError(None, f"head {head.name or ''} has {coef.shape[1]} outputs; the tag loop scores one")
    w = coef / np.asarray(lin.scale, np.float64)
    b = float(np.asarray(lin.intercept, np.float64).reshape(-1)[0]) - float(np.asarray(lin.mean, np.float64) @ w)
    return w, b, lin.link


def project(table: ShotTable, w: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """[N] each shot's projection x @ w (float64), in chunks so a float16 table is not copied whole."""
    if table.vectors.shape[1] != len(w):
        raise HeadError(None, f"the head expects {len(w)}-d vectors, the catalog's are {table.vectors.shape[1]}-d")
    w32 = w.astype(np.float32)
    out = np.empty(len(table.vectors), np.float64)
    for a in range(0, len(out), chunk):
        out[a:a + chunk] = np.asarray(table.vectors[a:a + chunk], np.float32) @ w32
    return out


def clip_scores(u: np.ndarray, cands: Candidates, b: float, link: str = "identity") -> np.ndarray:
    """[M] the head's score of each candidate: link(mean of its shots' projections + b)."""
    cs = np.concatenate([[0.0], np.cumsum(u)])
    z = (cs[cands.last + 1] - cs[cands.first]) / (cands.last - cands.first + 1) + b
    return expit(z) if link == "sigmoid" else z


def overlapping(table: ShotTable, cands: Candidates, spans: list[tuple[str, float, float]]) -> np.ndarray:
    """[M] bool: the candidate overlaps one of the (title, start, end) spans (labelled clips)."""
    out = np.zeros(len(cands), bool)
    if not len(cands) or not spans:
        return out
    c_start, c_end = table.starts[cands.first], table.ends[cands.last]
    by_title: dict[int, list[tuple[float, float]]] = {}
    for title, start, end in spans:
        if title in table.titles:
            by_title.setdefault(table.index(title), []).append((start, end))
    for t, ss in by_title.items():
        rows = np.flatnonzero(cands.title == t)
        s = np.asarray(ss, np.float64)
        hit = (c_start[rows, None] < s[None, :, 1]) & (c_end[rows, None] > s[None, :, 0])
        out[rows] = hit.any(1)
    return out


def _non_overlapping(cands: Candidates, order: np.ndarray, k: int, exclude: np.ndarray) -> list[int]:
    taken: dict[int, list[tuple[int, int]]] = {}
    out: list[int] = []
    if k <= 0:
        return out
    for i in order:
        if exclude[i]:
            continue
        t, a, b = int(cands.title[i]), int(cands.first[i]), int(cands.last[i])
        if any(a <= y and x <= b for x, y in taken.get(t, ())):
            continue
        taken.setdefault(t, []).append((a, b))
        out.append(int(i))
        if len(out) == k:
            break
    return out


def top(scores: np.ndarray, cands: Candidates, k: int, exclude: np.ndarray | None = None) -> list[int]:
    """Indices of the k best-scoring candidates, no two overlapping, skipping `exclude`."""
    exclude = np.zeros(len(cands), bool) if exclude is None else exclude
    return _non_overlapping(cands, np.argsort(-scores, kind="stable"), k, exclude)


def clip_vectors(table: ShotTable, cands: Candidates, idx: list[int]) -> np.ndarray:
    """[len(idx), D] mean shot vector of the chosen candidates (float32)."""
    return np.stack([np.asarray(table.vectors[cands.first[i]:cands.last[i] + 1], np.float32).mean(0) for i in idx]) \
        if idx else np.zeros((0, table.vectors.shape[1]), np.float32)


def suggest(table: ShotTable, cands: Candidates, scores: np.ndarray, threshold: float, k: int,
            exclude: np.ndarray | None = None, pool: int = 20, max_similarity: float = 0.95) -> list[int]:
    """The k candidates to label next: nearest the threshold, spread over titles and content.

    The `pool` x k candidates nearest the threshold (no two overlapping) are taken in order of
    uncertainty, first at most one per title, then the rest of the pool; a candidate whose mean
    vector has cosine above `max_similarity` with one already taken is skipped.
    """
    exclude = np.zeros(len(cands), bool) if exclude is None else exclude
    order = np.argsort(np.abs(scores - threshold), kind="stable")
    ranked = _non_overlapping(cands, order, pool * k, exclude)
    vecs = clip_vectors(table, cands, ranked)
    norms = np.linalg.norm(vecs, axis=1)
    vecs = vecs / np.where(norms > 0, norms, 1.0)[:, None]
    chosen: list[int] = []
    for one_per_title in (True, False):
        titles = {int(cands.title[ranked[j]]) for j in chosen}
        for j, i in enumerate(ranked):
            if len(chosen) == k:
                return [ranked[c] for c in chosen]
            if j in chosen or (one_per_title and int(cands.title[i]) in titles):
                continue
            if chosen and float(np.max(vecs[chosen] @ vecs[j])) > max_similarity:
                continue
            chosen.append(j)
            titles.add(int(cands.title[i]))
    return [ranked[c] for c in chosen]


def decision_threshold(head: TrainedHead) -> float:
    """Where the head is least sure: probability 0.5 for a logistic head (the tag loop fits those),
    else its cross-validated best-F1 threshold (0.5 without one)."""
    if head.linear.link == "sigmoid":
        return 0.5
    t = head.card.thresholds[0] if head.card is not None and head.card.thresholds else 0.5
    return float(t) if np.isfinite(t) else 0.5


STRATEGIES = ("unsure", "top", "random")  # how `next_batch` picks the clips to label next


def next_batch(strategy: str, table: ShotTable, cands: Candidates, scores: np.ndarray, threshold: float, k: int,
               exclude: np.ndarray | None = None, rng: np.random.Generator | None = None) -> list[int]:
    """k candidates to label next: `unsure` (`suggest`), `top` (the best-scoring) or `random`."""
    exclude = np.zeros(len(cands), bool) if exclude is None else exclude
    if strategy == "unsure":
        return suggest(table, cands, scores, threshold, k, exclude)
    if strategy == "top":
        return top(scores, cands, k, exclude)
    if strategy == "random":
        rng = rng if rng is not None else np.random.default_rng()
        return _non_overlapping(cands, rng.permutation(len(cands)), k, exclude)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def labels_needed(answers: list[int], titles: list[str]) -> str | None:
    """What is missing before a head can be fitted and cross-validated, in words; None when nothing."""
    pos = sum(1 for a in answers if a == 1)
    neg = sum(1 for a in answers if a == 0)
    missing = []
    if pos < MIN_EACH:
        missing.append(f"{MIN_EACH - pos} more positive{'s' * (MIN_EACH - pos != 1)}")
    if neg < MIN_EACH:
        missing.append(f"{MIN_EACH - neg} more negative{'s' * (MIN_EACH - neg != 1)}")
    n_titles = len(set(titles))
    if n_titles < MIN_TITLES:
        missing.append(f"labels in {MIN_TITLES - n_titles} more title{'s' * (MIN_TITLES - n_titles != 1)}")
    if not missing:
        return None
    return (f"{pos} positive and {neg} negative labels in {n_titles} title{'s' * (n_titles != 1)}: "
            f"label {', '.join(missing)} to fit (cross-validation over titles needs {MIN_EACH} of each "
            f"answer in at least {MIN_TITLES} titles)")
