"""Applying trained heads to titles: scores, tags, top clips, ad breaks, scenes, as DataFrames.

Every function takes a store path and a head (a `TrainedHead` or its folder). A `Scorer` binds the
head to the store and refuses, before any work, a store whose embeddings are not those the head
was trained on (another model, other encoders, another dimension). Clips are embedded and pooled
as in training (`mediafm.evaluation.clips.ClipEmbedder`); the pure parts live in `proposals`, `breaks`
and `segmentation`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mediafm.apps import breaks as brk
from mediafm.apps import proposals as prop
from mediafm.apps import segmentation as sc
from mediafm.apps.head import EmbeddingSpec, HeadError, TrainedHead, load_head
from mediafm.apps.titles import (
    Timeline,
    check_clips,
    load_timeline,
    resolve_titles,
    title_cues,
)
from mediafm.store.catalog import Store
from mediafm.evaluation.clips import STORED_KINDS, Clip, ClipEmbedder, clip_shots
from mediafm.evaluation.kinds import CLASSIFIER_KINDS, PER_CLASS_KINDS
from mediafm.evaluation.labels import LabeledClip
from mediafm.types import MODALITIES


def as_head(head: TrainedHead | str | Path) -> TrainedHead:
    return head if isinstance(head, TrainedHead) else load_head(head)


def _encoder_key(encoders: dict | None, kind: str) -> dict:
    """The part of a store's encoder set an embedding kind depends on, without prose fields
    (licences, packages) that may change between releases of the same weights."""
    enc = encoders or {}
    if kind in MODALITIES:
        enc = {kind: enc.get(kind)}
    return {k: ({f: v.get(f) for f in ("name", "version", "dim")} if isinstance(v, dict) and "name" in v else v)
            for k, v in sorted(enc.items())}


class Scorer:
    """A head bound to a store: checks the store fits the head, embeds spans, scores them."""

    def __init__(self, store_root: str | Path, head: TrainedHead | str | Path, model_dir: str | Path | None = None):
        self.store = Store(store_root)
        self.head = as_head(head)
        self.spec: EmbeddingSpec = self.head.card.embedding
        self.embedder = self._embedder(model_dir)
        self._checked: set[str] = set()

    @property
    def label(self) -> str:
        return f"head {self.head.name!r}" if self.head.name else "the head"

    def _embedder(self, model_dir) -> ClipEmbedder:
        spec, store = self.spec, self.store
        if spec.kind in STORED_KINDS:
            return ClipEmbedder(store, spec.kind, spec.pooling)
        model = None
        if model_dir is not None:
            from mediafm.model import load_pretrained
            from mediafm.training.embed import model_identity

            given = model_identity(model_dir)["model_id"]
            if given != spec.model_id:
                raise HeadError(model_dir, f"model {given} is not the model {self.label} was trained with ({spec.model_id})")
            model = load_pretrained(model_dir)
        elif spec.kind == "contextual-isolated":
            raise HeadError(None, f"{self.label} uses contextual-isolated embeddings: pass --model, the model "
                            f"it was trained with ({spec.model_id})")
        elif spec.model_id not in store.model_ids():
            have = ", ".join(store.model_ids()) or "none"
            raise HeadError(store.root, f"{self.label} was trained on contextual embeddings of model {spec.model_id}; "
                            f"this store holds embeddings of: {have} (run `mediafm embed` with that model, or pass --model)")
        return ClipEmbedder(store, spec.kind, spec.pooling, model, spec.model_id)

    def check(self, titles: list[str]) -> None:
        """Refuse titles whose embeddings are not the head's (all checked before any scoring)."""
        want = _encoder_key(self.spec.encoders, self.spec.kind)
        for t in titles:
            if t in self._checked:
                continue
            if not self.store.has_features(t):
                raise HeadError(self.store.root, f"title {t!r} is not encoded; run `mediafm encode`")
            got = _encoder_key(self.store.feature_encoders(t), self.spec.kind)
            if got != want:
                raise HeadError(self.store.root, f"title {t!r} was encoded with other encoders than {self.label} "
                                f"was trained on ({got} vs {want})")
            if self.spec.kind == "contextual" and self.embedder.model is None and not self.embedder.has_stored_contextual(t):
                raise HeadError(self.store.root, f"title {t!r} has no contextual embeddings of model {self.spec.model_id}; "
                                "run `mediafm embed` with that model, or pass --model")
            if not self._checked and self.spec.kind != "contextual-isolated":
                dim = self.embedder.shot_vectors(t).shape[1]
                if dim != self.spec.dim:
                    raise HeadError(self.store.root, f"{self.label} takes {self.spec.dim}-d {self.spec.kind} embeddings; "
                                    f"this store's are {dim}-d")
            self._checked.add(t)

    def embed(self, spans: pd.DataFrame) -> np.ndarray:
        clips = [Clip(t, float(a), float(b)) for t, a, b in zip(spans["title"], spans["start"], spans["end"])]
        if not clips:
            return np.zeros((0, self.head.card.input_dim), np.float32)
        return self.embedder.embed_many(clips)

    def score(self, spans: pd.DataFrame) -> np.ndarray:
        if len(spans) == 0:
            k = len(self.head.card.classes) if self.head.card.task in PER_CLASS_KINDS else 0
            return np.zeros((0, k)) if k else np.zeros(0)
        return self.head.score(self.embed(spans))

    def shot_vectors(self, title: str) -> np.ndarray:
        """Per-shot vectors for scene cuts: the head's embedding, or fused for contextual-isolated."""
        if self.spec.kind == "contextual-isolated":
            return self.store.features(title, "fused")
        return self.embedder.shot_vectors(title)


def bind(store_root, head, model_dir=None) -> Scorer:
    """`head` bound to the store; a Scorer passes through, so several applications on the same
    titles (the explorer's scores, clips and breaks) share its per-title feature reads."""
    if isinstance(head, Scorer):
        if model_dir is not None or Path(store_root).resolve() != head.store.root.resolve():
            raise HeadError(None, "a Scorer is bound to its own store and model; pass the head instead")
        return head
    return Scorer(store_root, head, model_dir)


# ----------------------------------------------------------------------------- spans
SPAN_COLUMNS = ["title", "start", "end", "first_shot", "last_shot"]
# Column types of the tables the applications return, so that an empty table (titles without a
# cut, an empty clips file) has the columns and types of a full one: pandas gives a DataFrame built
# from column names alone object columns, on which boolean masks and `.str` fail.
_DTYPES = {"title": "object", "start": "float64", "end": "float64", "first_shot": "int64", "last_shot": "int64",
           "shot": "int64", "rank": "int64", "duration": "float64", "time_s": "float64", "score": "float64",
           "allowed": "bool", "chosen": "bool", "cues_known": "bool", "tags": "object"}


def empty_table(columns: list[str]) -> pd.DataFrame:
    """A table with no rows and the usual type of each column."""
    return pd.DataFrame({c: pd.Series(dtype=_DTYPES.get(c, "object")) for c in columns})


def _runs_frame(tl: Timeline, runs: np.ndarray) -> pd.DataFrame:
    runs = np.asarray(runs, np.int64).reshape(-1, 2)
    return pd.DataFrame({"title": tl.title, "start": tl.starts[runs[:, 0]], "end": tl.ends[runs[:, 1]],
                         "first_shot": runs[:, 0], "last_shot": runs[:, 1]}, columns=SPAN_COLUMNS)


def candidate_spans(scorer: Scorer, titles: list[str], proposal: prop.ProposalConfig) -> pd.DataFrame:
    """Proposed clips of each title (lengths default to the range of the head's training clips)."""
    lo, hi = proposal.lengths((scorer.head.card.clip_s[0], scorer.head.card.clip_s[2]))
    frames = []
    for t in titles:
        tl = load_timeline(scorer.store, t)
        scenes = _scene_ids(scorer, tl) if proposal.within_scenes else None
        frames.append(_runs_frame(tl, prop.propose(tl.starts, tl.ends, lo, hi, proposal.max_overlap, scenes)))
    return _concat(frames)


def clip_spans(store: Store, clips: list[Clip]) -> pd.DataFrame:
    """Given clips with the first and last shot each overlaps."""
    rows, times = [], {}
    for c in clips:
        if c.title not in times:
            tl = load_timeline(store, c.title)
            times[c.title] = (tl.starts, tl.ends)
        idx, _ = clip_shots(*times[c.title], c)
        rows.append((c.title, c.start, c.end, int(idx.min()), int(idx.max())))
    return pd.DataFrame(rows, columns=SPAN_COLUMNS)


def shot_spans(store: Store, titles: list[str]) -> pd.DataFrame:
    frames = []
    for t in titles:
        tl = load_timeline(store, t)
        i = np.arange(tl.n_shots)
        frames.append(_runs_frame(tl, np.stack([i, i], axis=1)))
    return _concat(frames)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty_table(SPAN_COLUMNS)


def _scene_ids(scorer: Scorer, tl: Timeline) -> np.ndarray:
    cuts = sc.pick_boundaries(sc.boundary_scores(scorer.shot_vectors(tl.title)))
    return sc.scene_of_shot(tl.n_shots, cuts)


def _checked_clips(scorer: Scorer, clips, clips_source=None) -> list[Clip]:
    """The clips, each checked against the store (errors name the clips file and line)."""
    # Rows read from a file (LabeledClip) keep their line numbers for error messages.
    lines = [c.line for c in clips] if clips and all(isinstance(c, LabeledClip) for c in clips) else None
    clips = [c.clip if isinstance(c, LabeledClip) else c for c in clips]
    check_clips(scorer.store, clips, clips_source, lines)
    return clips


def _spans(scorer: Scorer, titles, clips, proposal, clips_source=None) -> pd.DataFrame:
    if clips is not None:
        clips = _checked_clips(scorer, clips, clips_source)
        scorer.check(sorted({c.title for c in clips}))
        return clip_spans(scorer.store, clips)
    titles = resolve_titles(scorer.store, titles)
    scorer.check(titles)
    return candidate_spans(scorer, titles, proposal)


def _score_columns(head: TrainedHead, scores: np.ndarray) -> dict[str, np.ndarray]:
    if scores.ndim == 1:
        return {"score": scores}
    return {f"score_{c}": scores[:, k] for k, c in enumerate(head.card.classes)}


def _require_clip_head(head: TrainedHead) -> None:
    if head.card.task == "scenes":
        raise HeadError(None, f"head {head.name!r} scores scene boundaries; use `mediafm scenes --head`")


# ----------------------------------------------------------------------------- applications
def predict(store_root, head, titles: list[str] | None = None, clips: list[Clip | LabeledClip] | None = None,
            proposal: prop.ProposalConfig | None = None, model_dir=None, clips_source=None) -> pd.DataFrame:
    """Scores of the given clips, or of candidate clips proposed from each title's shots.

    Returns one row per clip: title, start, end, first_shot, last_shot, the score (`score`, or
    `score_<class>` per class for multiclass / multilabel heads) and `in_training` (the head was
    fitted on labelled clips of that title).
    """
    proposal = proposal if proposal is not None else prop.ProposalConfig()
    scorer = bind(store_root, head, model_dir)
    _require_clip_head(scorer.head)
    spans = _spans(scorer, titles, clips, proposal, clips_source)
    out = spans.assign(**_score_columns(scorer.head, scorer.score(spans)))
    return out.assign(in_training=out["title"].isin(scorer.head.card.titles))


def tag(store_root, head, titles: list[str] | None = None, clips: list[Clip | LabeledClip] | None = None, per: str = "clip",
        proposal: prop.ProposalConfig | None = None, threshold: float | None = None, model_dir=None,
        clips_source=None) -> pd.DataFrame:
    """Labels per clip (given or proposed) or per shot: every class scoring at least its threshold
    (the best-F1 threshold on the head's CV predictions, or `threshold` for all classes).

    Returns title, start, end, first_shot, last_shot, `tags` (classes joined by `|`; a binary head
    tags with its own name), and the scores.
    """
    proposal = proposal if proposal is not None else prop.ProposalConfig()
    scorer = bind(store_root, head, model_dir)
    h = scorer.head
    if h.card.task not in CLASSIFIER_KINDS:
        raise HeadError(None, f"head {h.name!r} is a {h.card.task} head: it scores, it does not label "
                        "(use `mediafm predict` or `mediafm clips --rank`)")
    if per == "shot":
        if clips is not None:
            titles = sorted({c.title for c in _checked_clips(scorer, clips, clips_source)})
        if clips is not None and not titles:
            spans = empty_table(SPAN_COLUMNS)  # an empty clips file tags nothing ("no titles" means all)
        else:
            titles = resolve_titles(scorer.store, titles)
            scorer.check(titles)
            spans = shot_spans(scorer.store, titles)
    elif per == "clip":
        spans = _spans(scorer, titles, clips, proposal, clips_source)
    else:
        raise HeadError(None, f"tag per 'clip' or 'shot', not {per!r}")
    scores = scorer.score(spans)
    names = [h.name or "positive"] if h.card.task == "binary" else list(h.card.classes)
    s2 = scores.reshape(len(spans), len(names))
    thr = np.full(s2.shape[1], threshold) if threshold is not None else np.asarray(h.card.thresholds, float)
    hits = s2 >= thr[None, :]
    tags = ["|".join(n for n, on in zip(names, row) if on) for row in hits]
    return spans.assign(tags=pd.Series(tags, index=spans.index, dtype="object"), **_score_columns(h, scores))


def shot_scores(store_root, head, titles: list[str] | None = None, klass: str | None = None,
                model_dir=None) -> pd.DataFrame:
    """The head's score of every single shot (each shot taken as a clip): title, shot, start, end,
    score. What the explorer draws along a title's timeline."""
    scorer = bind(store_root, head, model_dir)
    _require_clip_head(scorer.head)
    titles = resolve_titles(scorer.store, titles)
    scorer.check(titles)
    spans = shot_spans(scorer.store, titles)
    score, _ = _scalar_scores(scorer.head, scorer.score(spans), klass)
    return pd.DataFrame({"title": spans["title"], "shot": spans["first_shot"], "start": spans["start"],
                         "end": spans["end"], "score": score})


def _scalar_scores(head: TrainedHead, scores: np.ndarray, klass: str | None) -> tuple[np.ndarray, float | None]:
    """One score per clip (and the CV threshold that goes with it, if any)."""
    card = head.card
    if scores.ndim == 1:
        if klass is not None and card.task == "rank":
            raise HeadError(None, f"head {head.name!r} ranks; it has no classes (drop --class)")
        return scores, (card.thresholds[0] if card.thresholds else None)
    if klass is None:
        raise HeadError(None, f"head {head.name!r} scores {len(card.classes)} classes; choose one with --class "
                        f"({', '.join(card.classes)})")
    if klass not in card.classes:
        raise HeadError(None, f"head {head.name!r} has no class {klass!r} ({', '.join(card.classes)})")
    k = card.classes.index(klass)
    return scores[:, k], (card.thresholds[k] if card.thresholds else None)


def top_clips(store_root, head, titles: list[str] | None = None, k: int = 3, klass: str | None = None,
              proposal: prop.ProposalConfig | None = None, model_dir=None) -> pd.DataFrame:
    """The k best-scoring candidate clips of each title, none overlapping another.

    Every shot run of the length range is a candidate (the proposal's overlap filter is not used:
    the non-overlap rule between picks replaces it). Returns title, rank (1 = best), start, end,
    duration, first_shot, last_shot, score.
    """
    proposal = proposal if proposal is not None else prop.ProposalConfig()
    scorer = bind(store_root, head, model_dir)
    _require_clip_head(scorer.head)
    spans = _spans(scorer, titles, None, prop.ProposalConfig(proposal.min_s, proposal.max_s, 1.0, proposal.within_scenes))
    score, _ = _scalar_scores(scorer.head, scorer.score(spans), klass)
    spans = spans.assign(score=score)
    frames = []
    for _, g in spans.groupby("title", sort=True):
        keep = prop.top_k(g[["start", "end"]].to_numpy(float), g["score"].to_numpy(), k)
        frames.append(g.iloc[keep].assign(rank=np.arange(1, len(keep) + 1)))
    out = _concat(frames)
    if out.empty:
        return empty_table(["title", "rank", "start", "end", "duration", "first_shot", "last_shot", "score"])
    out["duration"] = out["end"] - out["start"]
    return out[["title", "rank", "start", "end", "duration", "first_shot", "last_shot", "score"]].reset_index(drop=True)


def break_candidates(store_root, head, titles: list[str] | None = None, config: brk.BreakConfig | None = None,
                     klass: str | None = None, model_dir=None) -> pd.DataFrame:
    """Every cut between shots with its score, whether a break may go there, and whether it was chosen.

    A cut is scored by the clip of whole shots ending at it whose length is closest to
    `config.clip_s` (default: the median length of the head's training clips). A cut is not
    allowed inside a subtitle cue; for titles whose cues the store does not know, no cut between
    two shots that both carry text is allowed (a line may run across it).
    """
    config = config if config is not None else brk.BreakConfig()
    scorer = bind(store_root, head, model_dir)
    _require_clip_head(scorer.head)
    titles = resolve_titles(scorer.store, titles)
    scorer.check(titles)
    length = config.clip_s if config.clip_s is not None else scorer.head.card.clip_s[1]
    frames, allowed_all, cue_known = [], [], []
    for t in titles:
        tl = load_timeline(scorer.store, t)
        if tl.n_shots < 2:
            continue
        cuts = np.arange(tl.n_shots - 1)
        firsts = np.array([brk.clip_before(tl.starts, tl.ends, g, length) for g in cuts])
        frames.append(pd.DataFrame({"title": t, "shot": cuts + 1, "time_s": brk.cut_times(tl.starts),
                                    "start": tl.starts[firsts], "end": tl.ends[cuts],
                                    "first_shot": firsts, "last_shot": cuts}))
        cues = title_cues(scorer.store, t)
        # No subtitle cues but text on the shots: speech transcribed later (ASR), whose lines have
        # no cue times here, so the cues are as unknown as for a title never read for them.
        known = cues is not None and (len(cues) > 0 or not tl.has_text.any())
        times = brk.cut_times(tl.starts)
        allowed_all.append(~brk.inside_cues(times, cues) if known else ~(tl.has_text[:-1] & tl.has_text[1:]))
        cue_known.append(np.full(len(cuts), known))
    cols = ["title", "shot", "time_s", "score", "allowed", "chosen", "cues_known", "start", "end"]
    if not frames:
        return empty_table(cols)
    spans = pd.concat(frames, ignore_index=True)
    score, cv_thr = _scalar_scores(scorer.head, scorer.score(spans), klass)
    min_score = config.min_score if config.min_score is not None else cv_thr
    spans = spans.assign(score=score, allowed=np.concatenate(allowed_all), cues_known=np.concatenate(cue_known))
    chosen = np.zeros(len(spans), bool)
    for _, g in spans.groupby("title", sort=False):
        idx = brk.pick_breaks(g["time_s"].to_numpy(), g["score"].to_numpy(), g["allowed"].to_numpy(),
                              config.min_spacing_s, min_score, config.max_breaks)
        chosen[g.index[idx]] = True
    return spans.assign(chosen=chosen)[cols]


def ad_breaks(store_root, head, titles: list[str] | None = None, config: brk.BreakConfig | None = None,
              klass: str | None = None, model_dir=None) -> pd.DataFrame:
    """The chosen ad-break points: title, shot (the cut lies before it), time_s, score, and the
    scored clip (start, end). See `break_candidates`."""
    cands = break_candidates(store_root, head, titles, config, klass, model_dir)
    return cands[cands["chosen"]].drop(columns=["allowed", "chosen"]).reset_index(drop=True)


def scene_cuts(store_root, titles: list[str] | None = None, head=None, embedding: str | None = None,
               model_dir=None, window: int = sc.DEFAULT_WINDOW, threshold: float | None = None,
               model_id: str | None = None) -> pd.DataFrame:
    """Every cut with its scene-boundary score and whether it opens a scene.

    With a scene head (`mediafm fit --task scenes`): its scores and CV threshold. Without: the
    unsupervised TextTiling scores (`mediafm.apps.segmentation`) on `embedding` (default:
    contextual when the store holds contextual embeddings or a model is given, else fused), of
    the model in `model_dir`, or the stored embeddings of `model_id` (default: the store's only one).
    """
    store = Store(store_root)
    if head is not None:
        scorer = bind(store_root, head, model_dir)
        if scorer.head.card.task != "scenes":
            raise HeadError(None, f"head {scorer.head.name!r} is a {scorer.head.card.task} head, not a scene head "
                            "(train one with `mediafm fit --task scenes`)")
        titles = resolve_titles(store, titles)
        scorer.check(titles)
        thr = threshold if threshold is not None else scorer.head.card.thresholds[0]
        vectors, method = scorer.shot_vectors, f"head:{scorer.head.name}"

        def score(v: np.ndarray) -> np.ndarray:
            return scorer.head.score(sc.gap_features(v, scorer.head.card.window)) if len(v) > 1 else np.zeros(0)
    else:
        kind = embedding or ("contextual" if model_dir is not None or store.model_ids() else "fused")
        if kind == "contextual-isolated":
            raise HeadError(None, "scenes need per-shot embeddings; contextual-isolated has none")
        if kind == "contextual" and model_dir is None and model_id is not None:
            embedder = ClipEmbedder(store, kind, "mean", None, model_id)
        else:
            embedder = ClipEmbedder.open(store_root, kind, model_dir)
        titles = resolve_titles(store, titles)
        thr, vectors, method = threshold, embedder.shot_vectors, f"unsupervised:{kind}"

        def score(v: np.ndarray) -> np.ndarray:
            return sc.boundary_scores(v, window)
    frames = []
    for t in titles:
        tl = load_timeline(store, t)
        s = score(vectors(t)) if tl.n_shots > 1 else np.zeros(0)
        opens = np.zeros(len(s), bool)
        opens[sc.pick_boundaries(s, thr)] = True
        frames.append(pd.DataFrame({"title": t, "shot": np.arange(1, tl.n_shots), "time_s": brk.cut_times(tl.starts),
                                    "score": s, "boundary": opens, "method": method}))
    return _concat(frames) if any(len(f) for f in frames) else pd.DataFrame(
        columns=["title", "shot", "time_s", "score", "boundary", "method"])


def scenes(store_root, titles: list[str] | None = None, head=None, embedding: str | None = None, model_dir=None,
           window: int = sc.DEFAULT_WINDOW, threshold: float | None = None) -> pd.DataFrame:
    """Scenes of each title: title, scene, start, end, first_shot, last_shot, n_shots."""
    store = Store(store_root)
    cuts = scene_cuts(store_root, titles, head, embedding, model_dir, window, threshold)
    rows = []
    for t in resolve_titles(store, titles):
        tl = load_timeline(store, t)
        c = cuts[(cuts["title"] == t) & cuts["boundary"]]
        firsts = [0, *c["shot"].astype(int).tolist()]
        lasts = [f - 1 for f in firsts[1:]] + [tl.n_shots - 1]
        rows += [(t, k, float(tl.starts[a]), float(tl.ends[b]), a, b, b - a + 1) for k, (a, b) in enumerate(zip(firsts, lasts))]
    return pd.DataFrame(rows, columns=["title", "scene", "start", "end", "first_shot", "last_shot", "n_shots"])
