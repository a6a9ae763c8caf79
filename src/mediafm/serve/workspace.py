"""The explorer's labelling workspace: tags, their labels and heads, in a folder of the user's.

    WORKSPACE/tags/<tag>/tag.json     {"name": "car chase", "created": ...}
    WORKSPACE/tags/<tag>/labels.csv   the labels CSV format (title,start,end,label; label 1 or 0)
    WORKSPACE/tags/<tag>/head/        a head folder from the same `fit` as `mediafm fit` (binary)
    WORKSPACE/tags/<tag>/fitted.csv   the labels that head was fitted on

`mediafm fit STORE WORKSPACE/tags/<tag>/labels.csv --task binary`, `mediafm tag --head
WORKSPACE/tags/<tag>/head` and the Python API take these files as they are. The store is only read.

Safety: a tag's folder name is derived from its name and checked against TAG_RE, so no request
names a path; every write is atomic (temp file, fsync, rename: a kill leaves the previous labels);
each tag's labels change under a lock, one label per request, so two tabs labelling at once both
land. Fits run one at a time per tag in a background thread (the page polls their state).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from mediafm.apps import labelloop as ll
from mediafm.apps.head import HeadError, TrainedHead, load_head, save_head
from mediafm.errors import ConfigError, MediafmError
from mediafm.evaluation.labels import read_labels, write_labels
from mediafm.evaluation.probes import ProbeConfig
from mediafm.store.atomic import atomic_path, write_json_atomic
from mediafm.store.catalog import Store
from mediafm.store.ids import is_title_id

log = logging.getLogger(__name__)

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")
MAX_TAGS = 500
MAX_LABELS = 50_000  # per tag
END_TOLERANCE_S = 0.5  # as apps.titles: a clip may end this far past its title's last shot


# Tags are fitted with a logistic probe (`mediafm fit --head logistic`): its scores are
# probabilities, so "unsure" is a score near 0.5. On benchmarks/label_loop.py it also reached a
# higher held-out AP than the ridge probe from the same labels (200 random labels: tense scene 0.617
# against 0.583, comedy 0.441 against 0.424), and its suggestions did better than the ridge probe's
# (whose "unsure" was measured against its best-F1 threshold). Its C grid stays at four values: each
# is an LBFGS fit per inner fold, and a fit must return within seconds while the user waits.
TAG_PROBE = ProbeConfig(head="logistic", c_grid=(0.001, 0.01, 0.1, 1.0))
# Tag heads standardise every feature alike instead of weighing the embedding's parts equally:
# with equal parts LBFGS took longer to converge, and a fit on 200 labels went from 7.8 s to
# 10.6 s on 2 cores without raising the loop's held-out AP (benchmarks/label_loop.py,
# docs/explorer.md).
TAG_WEIGH_PARTS = False
# The loop scores every candidate clip of the catalog from one projection of its shots
# (`mediafm.apps.labelloop`), which needs a head linear in the mean of a clip's shot vectors.
TAG_POOLING = "mean"


class WorkspaceError(MediafmError):
    """A request the workspace cannot carry out (its message is shown to the user as it is)."""


def tag_id(name: str) -> str:
    """The folder name of a tag: its name in lower case, spaces as dashes; WorkspaceError if the
    name is empty, too long or has characters other than letters, digits, space, _ and -."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise WorkspaceError(None, "a tag name is 1-64 characters: letters, digits, spaces, _ and -, "
                             "starting with a letter or digit")
    tid = re.sub(r" +", "-", name.lower())
    if not TAG_RE.match(tid):  # the name's rule implies it; kept as the check the file system relies on
        raise WorkspaceError(None, f"tag name {name!r} does not make a valid folder name")
    return tid


@dataclass(frozen=True)
class Label:
    title: str
    start: float
    end: float
    answer: int  # 1 = the tag applies, 0 = it does not

    @property
    def key(self) -> tuple[str, float, float]:
        return (self.title, round(self.start, 3), round(self.end, 3))


@dataclass
class FitState:
    state: str = "idle"  # idle | running | done | failed
    message: str = ""
    started: float = 0.0
    seconds: float = 0.0
    n_labels: int = 0
    stage: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.state == "running":
            d["seconds"] = round(time.time() - self.started, 1)
        return d


@dataclass
class _Tag:
    tid: str
    name: str
    labels: dict[tuple[str, float, float], Label] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fit: FitState = field(default_factory=FitState)
    head: TrainedHead | None = None
    head_mtime: int | None = None
    fitted: tuple[int, dict] | None = None  # (mtime of fitted.csv, label by clip key)


def _write_labels(path: Path, labels: list[Label]) -> None:
    """The labels CSV (`evaluation.labels.write_labels`), written atomically."""
    with atomic_path(path) as tmp:
        write_labels(tmp, [(lb.title, lb.start, lb.end, str(lb.answer)) for lb in labels])


class Workspace:
    """Tags over one store (see the module docstring).

    Args:
        root: the workspace folder (created).
        store: the catalog (only read).
        embedding: what heads are fitted on: "contextual" (the store's contextual model) or "fused".
        model_id: with "contextual", the contextual model's id when the store holds several (`serve --model`).
        probe: ProbeConfig for fits (default: TAG_PROBE).
    """

    def __init__(self, root: str | Path, store: Store, embedding: str = "fused", probe=None,
                 model_id: str | None = None):
        self.root = Path(root)
        self.store = store
        self.embedding = embedding
        self.model_id = model_id
        self.probe = probe if probe is not None else TAG_PROBE
        try:
            (self.root / "tags").mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the folder should be, no permission
            raise ConfigError(self.root, f"cannot be used as the workspace folder ({exc.strerror or exc})") from None
        self._tags: dict[str, _Tag] = {}
        self._lock = threading.Lock()  # the tag list
        self._table: ll.ShotTable | None = None
        self._table_key = None
        self._table_lock = threading.Lock()
        self._scores: dict[str, tuple] = {}  # tid -> ((head mtime, table id, length), Candidates, their scores, shot scores)
        for d in sorted((self.root / "tags").iterdir()):
            if d.is_dir() and TAG_RE.match(d.name) and (d / "tag.json").is_file():
                try:
                    self._tags[d.name] = self._load_tag(d)
                except (OSError, ValueError, MediafmError) as exc:
                    log.warning("workspace: skipping tag folder %s: %s", d, exc)

    # ------------------------------------------------------------------ tags and labels
    def _load_tag(self, d: Path) -> _Tag:
        meta = json.loads((d / "tag.json").read_text(encoding="utf-8"))
        tag = _Tag(d.name, str(meta.get("name") or d.name))
        if (d / "labels.csv").exists() and (d / "labels.csv").stat().st_size:
            for r in read_labels(d / "labels.csv"):
                lb = Label(r.clip.title, r.clip.start, r.clip.end, 1 if r.label.strip() in ("1", "true", "yes") else 0)
                tag.labels[lb.key] = lb
        return tag

    def _tag(self, tid: str) -> _Tag:
        tag = self._tags.get(tid) if TAG_RE.match(tid or "") else None
        if tag is None:
            raise KeyError(tid)
        return tag

    def folder(self, tid: str) -> Path:
        return self.root / "tags" / self._tag(tid).tid

    def tags(self) -> list[dict]:
        return [self.summary(t) for t in sorted(self._tags)]

    def create(self, name: str) -> dict:
        tid = tag_id(name)
        with self._lock:
            if tid in self._tags:
                raise WorkspaceError(None, f"a tag {self._tags[tid].name!r} exists already")
            if len(self._tags) >= MAX_TAGS:
                raise WorkspaceError(None, f"this workspace has {MAX_TAGS} tags, the most it holds")
            d = self.root / "tags" / tid
            d.mkdir(parents=True, exist_ok=True)
            write_json_atomic({"name": name.strip(), "created": _now()}, d / "tag.json")
            _write_labels(d / "labels.csv", [])
            self._tags[tid] = _Tag(tid, name.strip())
        return self.summary(tid)

    def labels(self, tid: str) -> list[Label]:
        tag = self._tag(tid)
        with tag.lock:
            return sorted(tag.labels.values(), key=lambda lb: lb.key)

    def check_clip(self, title: str, start: float, end: float) -> None:
        """WorkspaceError unless the clip lies inside a title of the store."""
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
            raise WorkspaceError(None, f"a clip needs 0 <= start < end, got {start:g}-{end:g} s")
        if not is_title_id(title) or not self.store.has_title(title):  # an id first: no path from a request
            raise WorkspaceError(None, f"no title {title[:200]!r} in the store")
        shots = self.store.shots(title)
        last = float(shots["end_s"].max()) if len(shots) else 0.0
        if start >= last or end > last + END_TOLERANCE_S:
            raise WorkspaceError(None, f"clip {start:g}-{end:g} s is outside title {title!r} ({last:.2f} s)")

    def set_label(self, tid: str, title: str, start: float, end: float, answer: int | None) -> dict:
        """Label one clip (answer 1 or 0; None removes its label); the CSV is rewritten atomically."""
        tag = self._tag(tid)
        self.check_clip(title, start, end)
        lb = Label(title, float(start), float(end), int(answer) if answer is not None else 0)
        with tag.lock:
            if answer is None:
                if tag.labels.pop(lb.key, None) is None:
                    return self.summary(tid)
            else:
                if lb.key not in tag.labels and len(tag.labels) >= MAX_LABELS:
                    raise WorkspaceError(None, f"tag {tag.name!r} has {MAX_LABELS} labels, the most it holds")
                tag.labels[lb.key] = lb
            rows = sorted(tag.labels.values(), key=lambda x: x.key)
            _write_labels(self.folder(tid) / "labels.csv", rows)
            return self.summary(tid)

    def summary(self, tid: str) -> dict:
        tag = self._tag(tid)
        labels = list(tag.labels.values())
        head = self.head(tid)
        fitted = None
        if head is not None:
            c = head.card
            fitted = {"metric": c.metric, "value": c.value, "ci_low": c.ci_low, "ci_high": c.ci_high,
                      "n_labels": c.n_clips, "n_titles": c.n_titles, "created": c.created,
                      "embedding": c.embedding.kind, "model_id": c.embedding.model_id}
        answers = [lb.answer for lb in labels]
        return {"tag": tag.tid, "name": tag.name, "positives": sum(answers), "negatives": len(answers) - sum(answers),
                "titles": len({lb.title for lb in labels}), "needed": ll.labels_needed(answers, [lb.title for lb in labels]),
                "fitted": fitted, "changed_since_fit": self._changed_since_fit(tid, labels) if head else None,
                "fit": tag.fit.to_dict(), "labels_file": str(self.folder(tid) / "labels.csv"),
                "head_dir": str(self.folder(tid) / "head")}

    def _changed_since_fit(self, tid: str, labels: list[Label]) -> int:
        """Labels added, removed or changed since the head was fitted (the fitted labels are read
        again only when their file changes: every label request asks)."""
        tag = self._tag(tid)
        f = self.folder(tid) / "fitted.csv"
        try:
            mtime = f.stat().st_mtime_ns
            if tag.fitted is None or tag.fitted[0] != mtime:
                tag.fitted = (mtime, {Label(r.clip.title, r.clip.start, r.clip.end, 0).key: r.label.strip()
                                      for r in read_labels(f)})
            before = tag.fitted[1]
        except FileNotFoundError:
            before = {}
        except MediafmError:
            return len(labels)
        now = {lb.key: str(lb.answer) for lb in labels}
        return sum(1 for k in before.keys() | now.keys() if before.get(k) != now.get(k))

    # ------------------------------------------------------------------ fitting
    def _claim_fit(self, tag: _Tag) -> list[Label] | None:
        """Mark the tag's fit running and return the labels to fit on; None when one is running
        already. WorkspaceError when the labels cannot be cross-validated yet (what is missing)."""
        with tag.lock:
            if tag.fit.state == "running":
                return None
            labels = sorted(tag.labels.values(), key=lambda x: x.key)
            needed = ll.labels_needed([lb.answer for lb in labels], [lb.title for lb in labels])
            if needed:
                raise WorkspaceError(None, needed)
            tag.fit = FitState("running", "fitting", time.time(), 0.0, len(labels), "embedding the labelled clips")
            return labels

    def fit(self, tid: str) -> dict:
        """Start fitting the tag's head in a background thread; its state is in `summary(tid)["fit"]`."""
        tag = self._tag(tid)
        labels = self._claim_fit(tag)
        if labels is not None:
            threading.Thread(target=self._fit, args=(tag, labels), daemon=True, name=f"mediafm-fit-{tid}").start()
        return self.summary(tid)

    def fit_now(self, tid: str) -> dict:
        """Fit in this thread (the benchmark and the CLI-like callers); returns the summary."""
        tag = self._tag(tid)
        labels = self._claim_fit(tag)
        if labels is None:
            raise WorkspaceError(None, f"tag {tag.name!r} is being fitted already")
        self._fit(tag, labels)
        if tag.fit.state == "failed":
            raise WorkspaceError(None, tag.fit.message)
        return self.summary(tid)

    def _fit(self, tag: _Tag, labels: list[Label]) -> None:
        from mediafm.apps.fitting import fit

        d = self.root / "tags" / tag.tid
        t0, n = time.time(), len(labels)
        try:
            _write_labels(d / "fitting.csv", labels)
            res = fit(self.store.root, d / "fitting.csv", "binary", self.embedding, pooling=TAG_POOLING, config=self.probe,
                      weigh_parts=TAG_WEIGH_PARTS,
                      model_id=self.model_id if self.embedding == "contextual" else None)
            tag.fit.stage = "saving the head"
            save_head(res.head, d / "head")
            (d / "fitting.csv").replace(d / "fitted.csv")
            c = res.head.card
            tag.fit = FitState("done", f"fitted on {n} labels: cross-validated {c.metric} {c.value:.3f} "
                               f"[{c.ci_low:.3f}, {c.ci_high:.3f}] over {c.n_titles} titles",
                               t0, round(time.time() - t0, 2), n, "")
        except (MediafmError, ValueError) as exc:  # ConfigError, LabelsError, StoreError, HeadError
            problem = getattr(exc, "problem", None) or str(exc)
            tag.fit = FitState("failed", f"fit failed: {problem}", t0, round(time.time() - t0, 2), n, "")
        except Exception as exc:  # a bug: reported on the page, logged with its traceback
            log.exception("workspace: fitting %s", tag.tid)
            tag.fit = FitState("failed", f"fit failed: {type(exc).__name__}: {exc}", t0, round(time.time() - t0, 2), n, "")

    def head(self, tid: str) -> TrainedHead | None:
        """The tag's fitted head (reloaded when the folder changes), or None before the first fit."""
        tag = self._tag(tid)
        card = self.root / "tags" / tag.tid / "head" / "card.json"
        try:
            mtime = card.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if tag.head is None or tag.head_mtime != mtime:
            tag.head, tag.head_mtime = load_head(card.parent), mtime
        return tag.head

    # ------------------------------------------------------------------ the catalog under a head
    def shot_table(self) -> ll.ShotTable:
        """Every title's per-shot vectors of the workspace's embedding (loaded once per store change)."""
        key = self._store_key()
        if self._table is not None and self._table_key == key:
            return self._table
        with self._table_lock:
            if self._table is None or self._table_key != key:
                self._table, self._table_key = self._load_table(), key
        return self._table

    def _store_key(self) -> tuple:
        root = self.store.root
        out = []
        for f in [root / "features", *sorted((root / "contextual").glob("*/shots"))]:
            try:
                out.append((str(f), f.stat().st_mtime_ns))
            except FileNotFoundError:
                out.append((str(f), None))
        return tuple(out)

    def _load_table(self) -> ll.ShotTable:
        model = self._model() if self.embedding == "contextual" else None
        parts = []
        for title in self.store.title_ids():
            try:
                shots = self.store.shots(title)
                v = self.store.contextual(title, model) if model else self.store.features(title, "fused")
            except MediafmError as exc:  # not encoded (yet): not a candidate
                log.info("workspace: %s left out of the tag loop: %s", title, exc)
                continue
            if len(v) != len(shots) or not len(v):
                continue
            parts.append((title, shots["start_s"].to_numpy(float), shots["end_s"].to_numpy(float), np.asarray(v)))
        if not parts:
            raise WorkspaceError(self.store.root, f"no title of the store has {self.embedding} embeddings")
        return ll.ShotTable.build(parts)

    def _model(self) -> str:
        """The contextual model the tags are fitted on: the one named, else the store's only one."""
        return self.store.resolve_model(self.model_id)

    def clip_length(self, table: ll.ShotTable, labels: list[Label]) -> int:
        """Candidates are as long, in shots, as the median labelled clip."""
        lengths = []
        for lb in labels:
            if lb.title in table.titles:
                t = table.index(lb.title)
                a, b = table.offsets[t], table.offsets[t + 1]
                lengths.append(int(np.sum((table.starts[a:b] < lb.end) & (table.ends[a:b] > lb.start))) or 1)
        return int(np.median(lengths)) if lengths else 1

    def scored(self, tid: str) -> tuple[ll.ShotTable, ll.Candidates, np.ndarray, TrainedHead]:
        """(table, candidates, their scores, head) under the tag's fitted head; WorkspaceError
        before a fit or when the head no longer fits the catalog's embeddings."""
        head = self.head(tid)
        if head is None:
            raise WorkspaceError(None, f"tag {self._tag(tid).name!r} has no fitted head yet: press fit")
        spec = head.card.embedding
        if spec.kind != self.embedding or (spec.kind == "contextual" and spec.model_id != self._model()):
            raise WorkspaceError(None, f"the head of {self._tag(tid).name!r} was fitted on {spec.kind} embeddings"
                                 + (f" of model {spec.model_id}" if spec.model_id else "")
                                 + f"; the catalog's are {self.embedding}"
                                 + (f" of model {self._model()}" if self.embedding == "contextual" else "")
                                 + ": fit it again")
        table = self.shot_table()
        length = self.clip_length(table, self.labels(tid))
        key = (self._tag(tid).head_mtime, id(table), length)
        hit = self._scores.get(tid)
        if hit is None or hit[0] != key:
            try:
                w, b, link = ll.linear_parts(head)
                u = ll.project(table, w)
            except HeadError as exc:
                raise WorkspaceError(None, f"the head of {self._tag(tid).name!r} no longer fits the catalog "
                                     f"({exc.problem}); fit it again") from None
            cands = ll.candidates(table, length)
            shots = expit(u + b) if link == "sigmoid" else u + b  # each shot as a one-shot clip
            hit = self._scores[tid] = (key, cands, ll.clip_scores(u, cands, b, link), shots)
        return table, hit[1], hit[2], head

    def _clips(self, table, cands, scores, idx: list[int]) -> list[dict]:
        return [{"title": table.titles[int(cands.title[i])], "start": float(table.starts[cands.first[i]]),
                 "end": float(table.ends[cands.last[i]]),
                 "first_shot": int(cands.first[i] - table.offsets[cands.title[i]]),
                 "last_shot": int(cands.last[i] - table.offsets[cands.title[i]]), "score": float(scores[i])}
                for i in idx]

    def top(self, tid: str, k: int = 20) -> list[dict]:
        """The k best-scoring clips of the catalog not labelled yet, no two overlapping."""
        table, cands, scores, _ = self.scored(tid)
        spans = [(lb.title, lb.start, lb.end) for lb in self.labels(tid)]
        return self._clips(table, cands, scores, ll.top(scores, cands, k, ll.overlapping(table, cands, spans)))

    def suggestions(self, tid: str, k: int = 10) -> list[dict]:
        """k unlabelled clips to label next: where the head is least sure, spread over titles."""
        table, cands, scores, head = self.scored(tid)
        spans = [(lb.title, lb.start, lb.end) for lb in self.labels(tid)]
        idx = ll.suggest(table, cands, scores, ll.decision_threshold(head), k, ll.overlapping(table, cands, spans))
        return self._clips(table, cands, scores, idx)

    def title_scores(self, tid: str, title: str) -> dict:
        """Per shot of one title: its score as a one-shot clip; and the title's labels."""
        labels = [asdict(lb) for lb in self.labels(tid) if lb.title == title]
        head = self.head(tid)
        if head is None:
            return {"shots": [], "labels": labels}
        table, _, _, _ = self.scored(tid)
        if title not in table.titles:
            return {"shots": [], "labels": labels}
        t = table.index(title)
        shots = self._scores[tid][3][table.offsets[t]:table.offsets[t + 1]]
        return {"shots": [{"shot_index": i, "score": float(v)} for i, v in enumerate(shots)], "labels": labels}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def resolve_embedding(store: Store, model_id: str | None = None) -> str:
    """What tags are fitted on: "contextual" when a model is named (`serve --model`) or the store
    holds one contextual model's embeddings (fits read them as `mediafm fit --embedding contextual`
    does), else "fused"."""
    return "contextual" if model_id is not None or len(store.model_ids()) == 1 else "fused"
