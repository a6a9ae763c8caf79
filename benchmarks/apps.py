"""Benchmark: the applications on the narrative catalog, scored against its latent story.

    python benchmarks/apps.py [--titles 200] [--seed 1] [--folds 2] [--k 3] [--spacing 5]

Reuses the store and model that benchmarks/tasks.py builds under --cache (and builds them the same
way when missing); writes heads and results under --out, never into the cache. Titles are split
into --folds groups; for each group, heads are fitted (`mediafm.apps.fit`, the labels of the other
groups' titles only) and applied to its titles, so every number is measured on titles the heads
never saw. For each embedding (fused, contextual):

- clips: precision@k of `top_clips` (the popularity head, k non-overlapping clips per title) against
  the true popularity of every candidate clip (the catalog's popularity formula,
  `mediafm.synth.story.clip_popularity`): a pick counts when its true popularity reaches that of
  the k-th best true pick. Random: the same selection with random scores (mean of 20 draws).
- ad breaks: `ad_breaks` with the ad-relevancy head (floor: its CV threshold; spacing --spacing s)
  against the true break points: cuts ending a scene whose tension is below the title's median.
  A break within --tolerance s of a true point is right. AP: of every cut's score.
- scenes: AP over all cuts of the scene-boundary score, and F1 of the chosen boundaries, for the
  neighbour-cosine baseline, the unsupervised TextTiling default and a supervised scene head
  (`fit --task scenes` on scene labels written from the story).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--titles", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    p.add_argument("--out", default=os.path.expanduser("~/.cache/mediafm/bench-apps"))
    p.add_argument("--folds", type=int, default=2, help="title groups: heads are fitted on the others")
    p.add_argument("--k", type=int, default=3, help="clips per title")
    p.add_argument("--spacing", type=float, default=5.0, help="ad breaks: minimum spacing in seconds")
    p.add_argument("--tolerance", type=float, default=0.5, help="seconds between a predicted and a true point")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for the heads' cards")
    p.add_argument("--pooling", default="mean", help="the heads' clip read-out (the README's table: mean)")
    a = p.parse_args()
    t0 = time.time()
    lay, stories = _catalog(a)
    out = Path(a.out) / f"seed{a.seed}"
    out.mkdir(parents=True, exist_ok=True)
    from mediafm.store.catalog import Store

    store = Store(lay.store)
    titles = [t for t in sorted(stories) if store.has_title(t)]
    rng = np.random.default_rng(a.seed)
    fold_of = dict(zip(titles, rng.permutation(len(titles)) % a.folds))
    results = {}
    for kind in ("fused", "contextual"):
        results[kind] = run_kind(kind, lay, stories, titles, fold_of, out, a)
        print(f"{kind}: done ({time.time() - t0:.0f} s)", flush=True)
    (out / "apps.json").write_text(json.dumps(results, indent=1))
    print(f"\n# mediafm applications benchmark: {len(titles)} titles (narrative catalog, seed {a.seed}), "
          f"{a.folds}-fold split by title\n")
    print(table(results, a))
    print(f"\nresults: {out / 'apps.json'}; this invocation: {time.time() - t0:.0f} s")
    return 0


def _catalog(a):
    """The tasks benchmark's pipeline (reused when cached) and the latent story of every title."""
    from mediafm.recipes.demo import DemoConfig, Layout, run_demo, train_config
    from mediafm.synth.story import STORY_PRESETS, make_story

    root = Path(a.cache) / f"seed{a.seed}"
    done = root / "demo.json"
    if not (done.exists() and "eval" in json.loads(done.read_text()).get("stages", {})):
        # Same configuration as benchmarks/tasks.py, so both benchmarks share one cache.
        run_demo(DemoConfig(out=str(root), titles=a.titles, seed=a.seed, catalog="narrative",
                            train=train_config(a.seed), n_boot=1000, apps=False))
    stories = {}
    for i in range(a.titles):
        st = make_story(i, a.seed, STORY_PRESETS["narrative"])
        stories[st.title] = st
    return Layout(root), stories


# ----------------------------------------------------------------------------- truth from the story
def shot_times(st) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([s.start_s(st.fps) for s in st.shots]), np.array([s.end_s(st.fps) for s in st.shots]))


def scene_starts(st) -> np.ndarray:
    return np.array([st.shots[sc.first_shot].start_s(st.fps) for sc in st.scenes[1:]])


def calm_breaks(st) -> np.ndarray:
    """Cuts after a scene whose tension is below the title's median (the ad-relevancy rule)."""
    median = np.median([sc.tension for sc in st.scenes])
    return np.array([st.shots[st.scenes[i + 1].first_shot].start_s(st.fps)
                     for i, sc in enumerate(st.scenes[:-1]) if sc.tension < median])


def true_popularity(st, start: float, end: float) -> float:
    """Popularity of a detected clip: the story's formula on the story shots it covers (more than
    half of each shot's length)."""
    from mediafm.synth.story import clip_popularity

    s, e = shot_times(st)
    cover = (np.minimum(e, end) - np.maximum(s, start)) > 0.5 * (e - s)
    idx = np.flatnonzero(cover)
    if len(idx) == 0:
        idx = [int(np.argmax(np.minimum(e, end) - np.maximum(s, start)))]
    return clip_popularity(st, int(idx[0]), int(idx[-1]))


# ----------------------------------------------------------------------------- one embedding
def run_kind(kind, lay, stories, titles, fold_of, out: Path, a) -> dict:
    from mediafm.apps import (BreakConfig, ProposalConfig, break_candidates, fit, predict, save_head, scene_cuts,
                              top_clips)
    from mediafm.apps import proposals as prop
    from mediafm.apps import segmentation as seg
    from mediafm.evaluation.labels import read_labels, write_labels
    from mediafm.evaluation.metrics import average_precision
    from mediafm.evaluation.probes import ProbeConfig

    cfg = ProbeConfig(n_boot=a.n_boot, seed=a.seed)
    labels = {name: read_labels(lay.labels / f"{name}.csv") for name in ("popularity", "ad_relevancy")}
    scene_rows = [(t, float(shot_times(stories[t])[0][sc.first_shot]),
                   float(shot_times(stories[t])[1][sc.first_shot + sc.n_shots - 1]), f"scene {sc.index}")
                  for t in titles for sc in stories[t].scenes]
    rng = np.random.default_rng(a.seed)
    pk, pk_random, ab_hits, ab_pred, ab_found, ab_true = [], [], 0, 0, 0, 0
    ab_y, ab_s, head_y, head_s, head_pick = [], [], [], [], []
    cards = {}
    for fold in range(a.folds):
        test = [t for t in titles if fold_of[t] == fold]
        train = set(titles) - set(test)
        d = out / kind / f"fold{fold}"
        for name, rows in labels.items():
            write_labels(d / f"{name}.csv", [(r.clip.title, r.clip.start, r.clip.end, r.label) for r in rows
                                              if r.clip.title in train])
        write_labels(d / "scenes.csv", [r for r in scene_rows if r[0] in train])
        heads = {}
        for name, task in (("popularity", "rank"), ("ad_relevancy", "binary"), ("scenes", "scenes")):
            res = fit(lay.store, d / f"{name}.csv", task, kind, lay.model if kind == "contextual" else None,
                      pooling=a.pooling, config=cfg)
            heads[name] = res.head
            save_head(res.head, d / "heads" / name)
            cards.setdefault(name, []).append({"metric": res.head.card.metric, "value": res.head.card.value})
        # clips: top-k against the true popularity of every candidate of the same length range
        picks = top_clips(lay.store, heads["popularity"], test, a.k)
        cands = predict(lay.store, heads["popularity"], test, proposal=ProposalConfig(max_overlap=1.0))
        for t, g in cands.groupby("title"):
            spans = g[["start", "end"]].to_numpy(float)
            truth = np.array([true_popularity(stories[t], s, e) for s, e in spans])
            k = min(a.k, len(g))
            bar = truth[prop.top_k(spans, truth, k)].min()
            mine = picks[picks["title"] == t][["start", "end"]].to_numpy(float)
            got = [truth[np.flatnonzero((spans == m).all(1))[0]] for m in mine]
            pk.append(np.mean(np.array(got) >= bar - 1e-9))
            pk_random.append(np.mean([np.mean(truth[prop.top_k(spans, rng.random(len(g)), k)] >= bar - 1e-9)
                                      for _ in range(20)]))
        # ad breaks: chosen breaks vs calm scene ends; AP of every cut's score
        cand = break_candidates(lay.store, heads["ad_relevancy"], test, BreakConfig(min_spacing_s=a.spacing))
        for t, g in cand.groupby("title"):
            true = calm_breaks(stories[t])
            times = g["time_s"].to_numpy()
            chosen = times[g["chosen"].to_numpy()]
            ab_pred += len(chosen)
            ab_hits += sum(np.abs(true - c).min() <= a.tolerance for c in chosen) if len(true) else 0
            ab_true += len(true)
            ab_found += sum(len(chosen) and np.abs(chosen - b).min() <= a.tolerance for b in true)
            ab_y.append(seg.boundary_targets(times, true, a.tolerance))
            ab_s.append(g["score"].to_numpy())
        # scenes: the supervised head on held-out titles
        cuts = scene_cuts(lay.store, test, head=heads["scenes"])
        for t, g in cuts.groupby("title"):
            head_y.append(seg.boundary_targets(g["time_s"].to_numpy(), scene_starts(stories[t]), a.tolerance))
            head_s.append(g["score"].to_numpy())
            head_pick.append(g["boundary"].to_numpy())
    # scenes without training: every title
    n_true = sum(len(scene_starts(stories[t])) for t in titles)
    cuts = scene_cuts(lay.store, titles, embedding=kind, model_dir=lay.model if kind == "contextual" else None)
    vectors = shot_vectors(lay.store, kind, lay.model)
    ys, uns, unp, base, basep = [], [], [], [], []
    for t, g in cuts.groupby("title"):
        ys.append(seg.boundary_targets(g["time_s"].to_numpy(), scene_starts(stories[t]), a.tolerance))
        uns.append(g["score"].to_numpy())
        unp.append(g["boundary"].to_numpy())
        b = seg.neighbour_change(vectors(t))
        base.append(b)
        pick = np.zeros(len(b), bool)
        pick[seg.pick_boundaries(b)] = True
        basep.append(pick)
    y = np.concatenate(ys)
    hy = np.concatenate(head_y)

    def f1(y, pick, total):
        tp = int((y.astype(bool) & pick).sum())
        p, r = tp / max(pick.sum(), 1), tp / max(total, 1)
        return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}

    return {
        "clips": {"precision_at_k": float(np.mean(pk)), "random": float(np.mean(pk_random)), "k": a.k, "titles": len(pk)},
        "ad_breaks": {"precision": ab_hits / max(ab_pred, 1), "recall": ab_found / max(ab_true, 1),
                      "ap": average_precision(np.concatenate(ab_y), np.concatenate(ab_s)),
                      "breaks": ab_pred, "true_points": ab_true, "spacing_s": a.spacing},
        "scenes": {"baseline": {"ap": average_precision(y, np.concatenate(base)), **f1(y, np.concatenate(basep), n_true)},
                   "unsupervised": {"ap": average_precision(y, np.concatenate(uns)), **f1(y, np.concatenate(unp), n_true)},
                   "head": {"ap": average_precision(hy, np.concatenate(head_s)),
                            **f1(hy, np.concatenate(head_pick), n_true)},
                   "true_boundaries": n_true, "found_by_shot_detection": int(y.sum())},
        "cards": cards,
    }


def shot_vectors(store_root, kind: str, model_dir):
    """title -> per-shot vectors of `kind`, contextual ones from the evaluated model (model_dir):
    the baseline must read the same embedding as the other rows, whichever models the store holds."""
    from mediafm.evaluation.clips import ClipEmbedder

    return ClipEmbedder.open(store_root, kind, model_dir if kind == "contextual" else None).shot_vectors


def table(results: dict, a) -> str:
    first = next(iter(results.values()))
    lines = [f"Clips: precision@{a.k} of `mediafm clips --rank` (popularity head) against the true popularity",
             "", f"| embedding | P@{a.k} | random picks |", "|---|---|---|"]
    lines += [f"| {k} | {r['clips']['precision_at_k']:.3f} | {r['clips']['random']:.3f} |" for k, r in results.items()]
    lines += ["", f"Ad breaks: `mediafm adbreaks` (ad-relevancy head, spacing {a.spacing:g} s) against the scene ends "
              f"with below-median tension ({first['ad_breaks']['true_points']} points; a break within "
              f"{a.tolerance:g} s of one is right)", "",
              "| embedding | precision | recall | breaks placed | AP of all cut scores |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {r['ad_breaks']['precision']:.3f} | {r['ad_breaks']['recall']:.3f} | {r['ad_breaks']['breaks']} "
              f"| {r['ad_breaks']['ap']:.3f} |" for k, r in results.items()]
    s = first["scenes"]
    lines += ["", f"Scenes: boundaries of `mediafm scenes` ({s['true_boundaries']} true boundaries, "
              f"{s['found_by_shot_detection']} at a detected cut; recall counts all of them)", "",
              "| embedding | method | AP | precision | recall | F1 |", "|---|---|---|---|---|---|"]
    names = {"baseline": "neighbour cosine (baseline)", "unsupervised": "TextTiling (default, no labels)",
             "head": "scene head (`fit --task scenes`)"}
    for k, r in results.items():
        for m, label in names.items():
            x = r["scenes"][m]
            lines.append(f"| {k} | {label} | {x['ap']:.3f} | {x['precision']:.3f} | {x['recall']:.3f} | {x['f1']:.3f} |")
    lines += ["", f"Every number is on titles the heads never saw (fitted on the other {a.folds - 1} of {a.folds} "
              "title groups); the baseline and TextTiling need no training and run on every title."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
