"""The explorer's tag loop, measured: labels needed per strategy, and the loop's latency.

    python benchmarks/label_loop.py                 # narrative catalog of benchmarks/tasks.py (seed 1)
    python benchmarks/label_loop.py --repeats 1     # quicker, noisier

Needs the narrative catalog's store with its contextual embeddings, as `python benchmarks/tasks.py`
leaves it under --cache (seed{S}/store).

Quality. A simulated labeller answers from the catalog's latent truth (never from the model): a
one-shot-or-longer clip has the tag when most of its shots do. Two tags: "tense scene" (the scene's
tone is tense: changes within a title) and "comedy" (the title's genre: the same for every clip
of a title). The titles are split in half by a seeded shuffle: clips are labelled in one half,
AP is measured on every candidate clip of the other (held-out titles). Every run starts from the
same seed labels: text search (the explorer's, over subtitles and speech) with the tag's words,
each hit labelled until 5 positives are found, plus random clips until a head can be fitted.
Then, in batches of 10, the workspace fits the head (`Workspace.fit_now`: `mediafm fit`'s code)
and the next batch is chosen by each strategy (`labelloop.next_batch`): `unsure` (what the
explorer's "where is it unsure" suggests), `top` (confirming the best-scoring clips) or `random`.
AP on the held-out half after 20, 40, 80, 160 (and 200 for random) labels, mean over --repeats
splits. The target: `unsure` at 80 labels reaches random's AP at 200, on both tags.

Latency, on the same store: a fit on 200 labels, catalog-wide predictions for a freshly fitted
head (the first `top` request after the fit, through the HTTP API), and labelling one clip
(PUT, median and worst of 50). Targets: 10 s, 2 s and 100 ms.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src")]

from mediafm.apps import labelloop as ll

BUDGETS = (20, 40, 80, 160, 200)
BATCH = 10
N_SEED_POSITIVES = 5
MAX_SEED_HITS = 15  # search hits labelled at most, looking for the seed positives
TARGET_LABELS, REFERENCE_LABELS = 80, 200
LATENCY_TARGETS = {"fit on 200 labels": 10.0, "catalog-wide predictions": 2.0, "label a clip (worst of 50)": 0.1}


def tag_truth(story, shot_truth: dict, tag: str) -> np.ndarray:
    """[n shots] 0/1: the tag's truth for each detected shot of the title."""
    if tag == "tense scene":
        return (shot_truth["tone"] == "tense").astype(int)
    if tag == "comedy":
        return np.full(len(shot_truth["tone"]), int(story.genre == "comedy"))
    raise ValueError(tag)


TAG_QUERIES = {"tense scene": "hurry danger run hide trap warning", "comedy": "banana silly joke oops prank"}


class Labeller:
    """Answers for any candidate clip from the latent truth (majority of its shots)."""

    def __init__(self, table: ll.ShotTable, truth: dict[str, np.ndarray]):
        self.table = table
        self.shot = np.concatenate([truth[t] for t in table.titles])

    def clips(self, cands: ll.Candidates, idx) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        cs = np.concatenate([[0], np.cumsum(self.shot)])
        pos = cs[cands.last[idx] + 1] - cs[cands.first[idx]]
        return (2 * pos >= (cands.last[idx] - cands.first[idx] + 1)).astype(int)


def sub_table(table: ll.ShotTable, titles: list[str]) -> ll.ShotTable:
    parts = []
    for t in titles:
        i = table.index(t)
        a, b = table.offsets[i], table.offsets[i + 1]
        parts.append((t, table.starts[a:b], table.ends[a:b], table.vectors[a:b]))
    return ll.ShotTable.build(parts, dtype=table.vectors.dtype)


def held_out_ap(head, table: ll.ShotTable, cands: ll.Candidates, y: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    w, b, link = ll.linear_parts(head)
    return float(average_precision_score(y, ll.clip_scores(ll.project(table, w), cands, b, link)))


def seed_labels(text_index, pool: ll.ShotTable, labeller: Labeller, query: str, rng) -> list[tuple[int, int]]:
    """(global shot row, answer) of the seed: search hits in the pool's titles, labelled in order
    until N_SEED_POSITIVES positives, then random shots until a head can be fitted."""
    one = ll.candidates(pool, 1)
    row_of = {(pool.titles[int(one.title[i])], int(one.first[i] - pool.offsets[one.title[i]])): i for i in range(len(one))}
    out, seen = [], set()
    for h in text_index.search(query, 400):
        i = row_of.get((h.title_id, h.shot_index))
        if i is None or i in seen:
            continue
        seen.add(i)
        out.append((i, int(labeller.clips(one, [i])[0])))
        if sum(a for _, a in out) >= N_SEED_POSITIVES or len(out) >= MAX_SEED_HITS:
            break
    for i in rng.permutation(len(one)):
        titles = [pool.titles[int(one.title[j])] for j, _ in out]
        if ll.labels_needed([a for _, a in out], titles) is None:
            break
        if int(i) not in seen:
            seen.add(int(i))
            out.append((int(i), int(labeller.clips(one, [int(i)])[0])))
    return out


def run_strategy(store, strategy: str, tag: str, table: ll.ShotTable, pool_titles, held_titles, truth, text_index,
                 seed: int, work: Path, model_id: str | None = None) -> dict[int, float]:
    """AP on the held-out titles at each budget for one strategy, one split."""
    from mediafm.serve.workspace import Workspace

    rng = np.random.default_rng(seed)
    pool, held = sub_table(table, pool_titles), sub_table(table, held_titles)
    lab_pool, lab_held = Labeller(pool, truth), Labeller(held, truth)
    ws = Workspace(work / f"{tag}-{strategy}-{seed}".replace(" ", "-"), store, "contextual", model_id=model_id)
    tid = ws.create(tag)["tag"]
    one = ll.candidates(pool, 1)
    labelled = []  # (title, start, end)

    def label(cands, idx):
        for i, y in zip(idx, lab_pool.clips(cands, idx)):
            t = pool.titles[int(cands.title[i])]
            span = (t, float(pool.starts[cands.first[i]]), float(pool.ends[cands.last[i]]))
            ws.set_label(tid, *span, int(y))
            labelled.append(span)

    label(one, [i for i, _ in seed_labels(text_index, pool, lab_pool, TAG_QUERIES[tag], np.random.default_rng(seed))])
    budgets = [b for b in BUDGETS if strategy == "random" or b < REFERENCE_LABELS]
    out: dict[int, float] = {}
    head = None
    while budgets:
        n = len(labelled)
        if strategy != "random" or n >= budgets[0]:  # random needs a head only to be measured
            ws.fit_now(tid)
            head = ws.head(tid)
        length = ws.clip_length(pool, ws.labels(tid))
        if n >= budgets[0]:
            held_cands = ll.candidates(held, length)
            out[budgets.pop(0)] = held_out_ap(head, held, held_cands, lab_held.clips(held_cands, np.arange(len(held_cands))))
            if not budgets:
                break
        cands = ll.candidates(pool, length)
        if strategy == "random":
            scores, threshold = np.zeros(len(cands)), 0.5
        else:
            w, b, link = ll.linear_parts(head)
            scores, threshold = ll.clip_scores(ll.project(pool, w), cands, b, link), ll.decision_threshold(head)
        k = min(BATCH, budgets[0] - n)
        label(cands, ll.next_batch(strategy, pool, cands, scores, threshold, k, ll.overlapping(pool, cands, labelled), rng))
    return out


def quality(store, table, truth, text_index, repeats: int, work: Path, model_id: str | None = None) -> tuple[bool, str]:
    lines, ok = [], True
    for tag in TAG_QUERIES:
        tag_truth_by_title = truth[tag]
        res: dict[str, list[dict[int, float]]] = {s: [] for s in ll.STRATEGIES}
        for r in range(repeats):
            order = np.random.default_rng([7, r]).permutation(list(table.titles))
            half = len(order) // 2
            pool_titles, held_titles = sorted(order[:half].tolist()), sorted(order[half:].tolist())
            for strategy in ll.STRATEGIES:
                t0 = time.time()
                res[strategy].append(run_strategy(store, strategy, tag, table, pool_titles, held_titles,
                                                  tag_truth_by_title, text_index, 100 * r + 1, work, model_id))
                print(f"  {tag}, split {r}, {strategy}: " + ", ".join(f"{b}: {v:.3f}" for b, v in res[strategy][-1].items())
                      + f" ({time.time() - t0:.0f} s)", flush=True)
        mean = {s: {b: float(np.mean([run[b] for run in runs])) for b in runs[0]} for s, runs in res.items()}
        share = float(np.mean(np.concatenate(list(tag_truth_by_title.values()))))
        lines.append(f"\n{tag} (AP on held-out titles; mean of {repeats} split{'s' * (repeats > 1)}; "
                     f"{share:.0%} of the catalog's shots have the tag)\n")
        lines.append("| labels | " + " | ".join(str(b) for b in BUDGETS) + " |")
        lines.append("|---|" + "---|" * len(BUDGETS))
        for s in ll.STRATEGIES:
            lines.append(f"| {s} | " + " | ".join(f"{mean[s][b]:.3f}" if b in mean[s] else "-" for b in BUDGETS) + " |")
        got, ref = mean["unsure"][TARGET_LABELS], mean["random"][REFERENCE_LABELS]
        met = got >= ref
        ok &= met
        lines.append(f"\nunsure at {TARGET_LABELS} labels: {got:.3f}; random at {REFERENCE_LABELS}: {ref:.3f}"
                     + ("" if met else "  <- target missed"))
    return ok, "\n".join(lines)


def latency(store_root: Path, truth: dict, work: Path, model_id: str | None = None) -> tuple[bool, str]:
    """Through the HTTP API of `mediafm serve --workspace`: label, fit on 200 labels, predictions."""
    from fastapi.testclient import TestClient

    from mediafm.serve.app import ServeConfig, create_app

    app = create_app(store_root, ServeConfig(workspace=str(work / "latency"), model_id=model_id))
    ws = app.state.workspace
    t0 = time.perf_counter()
    table = ws.shot_table()
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    rows = rng.choice(len(table.starts), 250, replace=False)
    titles = table.titles
    out, ok = {}, True
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        c.post("/api/tags", json={"name": "latency"})
        y = np.concatenate([truth[t] for t in titles])[rows]
        spans = [(titles[int(table.title_of(np.array([r]))[0])], float(table.starts[r]), float(table.ends[r]), int(a))
                 for r, a in zip(rows, y)]
        times = []
        for title, a, b, ans in spans[:200]:
            t0 = time.perf_counter()
            r = c.put("/api/tags/latency/labels", json={"title": title, "start": a, "end": b, "answer": ans})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        t0 = time.perf_counter()
        c.post("/api/tags/latency/fit", headers={"content-type": "application/json"})
        while c.get("/api/tags/latency").json()["fit"]["state"] == "running":
            time.sleep(0.02)
        out["fit on 200 labels"] = time.perf_counter() - t0
        state = c.get("/api/tags/latency").json()
        assert state["fit"]["state"] == "done", state["fit"]
        t0 = time.perf_counter()
        top = c.get("/api/tags/latency/top?k=20")
        out["catalog-wide predictions"] = time.perf_counter() - t0
        assert top.status_code == 200, top.text
        label_times = []
        for title, a, b, ans in spans[200:250]:
            t0 = time.perf_counter()
            c.put("/api/tags/latency/labels", json={"title": title, "start": a, "end": b, "answer": ans})
            label_times.append(time.perf_counter() - t0)
        out["label a clip (worst of 50)"] = max(label_times)
        med = statistics.median(label_times)
    lines = [(f"\nLatency ({len(titles)} titles, {len(table.starts):,} shots, {table.vectors.shape[1]}-d "
              f"{ws.embedding} vectors; the catalog's vectors loaded once at start-up in {load_s:.1f} s):\n"),
             "| step | seconds | target |", "|---|---|---|"]
    for k, v in out.items():
        met = v <= LATENCY_TARGETS[k]
        ok &= met
        lines.append(f"| {k} | {v:.3f} | {LATENCY_TARGETS[k]:g}" + ("" if met else "  <- target missed") + " |")
    lines.append(f"\nlabel a clip: median {med * 1000:.1f} ms over 50 (with 200 labels in the tag)")
    return ok, "\n".join(lines)


CURVE_LABELS = (80, 200, 500)


def probe_curve(table: ll.ShotTable, truth: dict, components: tuple[int, ...], draws: int = 2,
                input_dim: int = 0) -> str:
    """The workspace's probe (`TAG_PROBE`: logistic, grouped CV for C) fitted on random single shots
    of one half of the titles and scored (AP) on every shot of the other, at CURVE_LABELS labels and
    on all of the half: how far random labels carry this learner. Also on the catalog's top
    `components` principal directions (every shot's vector, labelled or not, centred and
    projected before the probe; still a linear head in the original space), and, when the vectors
    join the model's output to the `input_dim`-wide fused input (the `+input` read-outs), on the
    model's part alone (a head with zero weights on the input's). Mean over 3 splits x `draws` draws."""
    from sklearn.metrics import average_precision_score

    from mediafm.evaluation.labels import Targets
    from mediafm.evaluation.probes import fit_probe
    from mediafm.serve.workspace import TAG_PROBE

    X = np.asarray(table.vectors, np.float32)
    title_of = np.repeat(np.arange(len(table.titles)), np.diff(table.offsets))
    mean = X.mean(0)
    basis = np.linalg.svd(X - mean, full_matrices=False)[2] if components else None
    inputs = {"vectors": X, **{f"top {k} directions": (X - mean) @ basis[:k].T for k in components}}
    if 0 < input_dim < X.shape[1]:
        inputs["the model's part (no fused input)"] = X[:, input_dim:]
    config = dataclasses.replace(TAG_PROBE, n_boot=1)
    lines = []
    for tag, by_title in truth.items():
        y = np.concatenate([by_title[t] for t in table.titles])
        res = {name: {n: [] for n in (*CURVE_LABELS, "all")} for name in inputs}
        for r in range(3):
            order = np.random.default_rng([7, r]).permutation(len(table.titles))
            pool = np.isin(title_of, order[:len(order) // 2])
            for d in range(draws):
                rng = np.random.default_rng([r, d])
                for n in (*CURVE_LABELS, "all"):
                    while True:
                        idx = np.flatnonzero(pool) if n == "all" else rng.choice(np.flatnonzero(pool), n, replace=False)
                        if 2 <= y[idx].sum() <= len(idx) - 2:
                            break
                    for name, Z in inputs.items():
                        head = fit_probe(Z[idx], Targets("binary", y[idx], ("0", "1")), title_of[idx], "ap", config).head
                        res[name][n].append(average_precision_score(y[~pool], head(Z[~pool])))
        lines.append(f"\n{tag}: random single shots, AP on the other half's shots (3 splits x {draws} draws)\n")
        lines.append("| probe input | " + " | ".join(str(n) for n in res["vectors"]) + " |")
        lines.append("|---|" + "---|" * len(res["vectors"]))
        for name, by_n in res.items():
            lines.append(f"| {name} | " + " | ".join(f"{np.mean(v):.3f}" for v in by_n.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    p.add_argument("--titles", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-quality", action="store_true", help="latency only")
    p.add_argument("--probe-curve", nargs="*", type=int, metavar="K",
                   help="only the probe's learning curve on random single shots (and on the catalog's top K "
                        "principal directions); prints a table, checks no target")
    a = p.parse_args(argv)

    sys.path.insert(0, str(REPO / "benchmarks"))
    from shot_diagnostics import shot_truth

    from mediafm.search.text_index import TextIndex
    from mediafm.search.text_match import query_text_encoder
    from mediafm.serve.workspace import Workspace
    from mediafm.store.catalog import Store
    from mediafm.synth.story import make_story
    from mediafm.training.embed import model_identity

    store_root = Path(a.cache) / f"seed{a.seed}" / "store"
    if not (store_root / "store.json").exists():
        print(f"no store at {store_root}: run `python benchmarks/tasks.py --titles {a.titles} --seed {a.seed}` first")
        return 1
    store = Store(store_root)
    stories = {s.title: s for s in (make_story(i, a.seed) for i in range(a.titles))}
    t0 = time.time()
    # The model tasks.py trained (its store may also hold the lever table's models' embeddings).
    model_dir = Path(a.cache) / f"seed{a.seed}" / "model"
    model_id = model_identity(model_dir)["model_id"] if (model_dir / "config.json").exists() else None
    table = Workspace(tempfile.mkdtemp(), store, "contextual", model_id=model_id).shot_table()
    shots = {t: shot_truth(store, t, stories[t]) for t in table.titles}
    truth = {tag: {t: tag_truth(stories[t], shots[t], tag) for t in table.titles} for tag in TAG_QUERIES}
    print(f"# tag loop: {len(table.titles)} titles ({a.seed=}), {len(table.starts):,} shots, "
          f"{table.vectors.shape[1]}-d contextual vectors (loaded in {time.time() - t0:.1f} s)", flush=True)
    if a.probe_curve is not None:
        fused_dim = store.features(table.titles[0], "fused").shape[1]
        print(probe_curve(table, truth, tuple(a.probe_curve), input_dim=fused_dim))
        return 0
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if not a.skip_quality:
            text_index = TextIndex(query_text_encoder(), persist=False)
            text_index.refresh(store)
            met, text = quality(store, table, truth, text_index, a.repeats, Path(tmp), model_id)
            print(text, flush=True)
            ok &= met
        met, text = latency(store_root, truth["tense scene"], Path(tmp), model_id)
        print(text)
        ok &= met
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
