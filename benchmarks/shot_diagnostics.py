"""Per-shot diagnostics: what each embedding knows about its scene, probed shot by shot.

    python benchmarks/shot_diagnostics.py STORE MODEL_DIR --titles 200 --seed 1 [--catalog narrative|long|subtle]
        [--kinds fused contextual]

The clip tasks say how well an embedding serves a task; these probes say why. Each detected shot
of the store is matched to the synthetic story's shot under its midpoint, and a linear probe
(5-fold CV grouped by title, the grid's probes) decodes from the shot's vector alone:

- `tension`: its scene's tension (R^2);
- `tone`: its scene's tone, one of four (macro AP);
- `scene end`: whether it is the last shot of its scene (AP; chance = the share of such shots).
  An ad break sits between two scenes and a promo clip ends on a scene's edge, so a vector that
  does not know where its scene ends leaves clip tasks to guess.

Rows: the per-shot embeddings of the store (video, audio, text, fused) and the model's contextual
vectors. `tasks.py --diagnostics` prints the same table for its catalog and model. A last row
needs no probe: the unsupervised TextTiling score of the cut after each shot on the fused vectors
(`mediafm.apps.segmentation.boundary_scores`, window 2, what `mediafm scenes` uses and what the
boundary loss (`--boundary-weight`) teaches the model to predict), ranked as a scene-end score
(each title's last shot, which has no cut after it, left out).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DIAGNOSTICS = (("tension", "rank", "r2"), ("tone", "multiclass", "macro_ap"), ("scene end", "binary", "ap"))
KINDS = ("video", "audio", "text", "fused", "contextual")


def shot_truth(store, title: str, story) -> dict[str, np.ndarray]:
    """Per detected shot of `title`: its scene's tension and tone, and whether it is its scene's last
    shot (the next detected shot lies in another scene, or it ends the title)."""
    shots = store.shots(title)
    mid = (shots["start_s"].to_numpy(float) + shots["end_s"].to_numpy(float)) / 2
    starts = np.array([s.start_s(story.fps) for s in story.shots])
    i = np.clip(np.searchsorted(starts, mid, side="right") - 1, 0, len(story.shots) - 1)
    scene = np.array([story.shots[k].scene for k in i])
    return {"tension": np.array([story.scenes[s].tension for s in scene]),
            "tone": np.array([story.scenes[s].tone for s in scene]),
            "scene end": np.append(scene[1:] != scene[:-1], True).astype(np.int64)}


def diagnostics_table(store_root, model_dir, stories: dict, kinds=KINDS, n_boot: int = 200,
                      seed: int = 0, max_shots: int = 8000) -> tuple[str, dict]:
    """Markdown table (rows: embedding kinds; columns: DIAGNOSTICS) and the scores by kind and probe.

    At most `max_shots` shots are probed: beyond that, the same random share of every title's shots
    (each keeps its truth, computed on the whole title), so every title still counts; the probes'
    cost grows with shots x dimensions (3,712-d vectors of 40,000 shots take hours on 2 cores)."""
    from mediafm.evaluation.clips import ClipEmbedder
    from mediafm.evaluation.labels import Targets
    from mediafm.evaluation.probes import ProbeConfig, run_probe
    from mediafm.store.catalog import Store

    store = Store(store_root)
    titles = [t for t in store.title_ids() if t in stories]
    truth = {t: shot_truth(store, t, stories[t]) for t in titles}
    total = sum(len(v["tension"]) for v in truth.values())
    rng = np.random.default_rng(seed)
    keep = {t: np.sort(rng.permutation(len(v["tension"]))[:max(1, round(len(v["tension"]) * max_shots / total))])
            if total > max_shots else np.arange(len(v["tension"])) for t, v in truth.items()}
    truth = {t: {k: x[keep[t]] for k, x in v.items()} for t, v in truth.items()}
    groups = np.concatenate([[t] * len(truth[t]["tension"]) for t in titles])
    tones = sorted({x for t in titles for x in truth[t]["tone"]})
    targets = {
        "tension": Targets("rank", np.concatenate([truth[t]["tension"] for t in titles]), ()),
        "tone": Targets("multiclass", np.concatenate([[tones.index(x) for x in truth[t]["tone"]] for t in titles]),
                        tuple(tones)),
        "scene end": Targets("binary", np.concatenate([truth[t]["scene end"] for t in titles]), ("0", "1")),
    }
    cfg = ProbeConfig(n_boot=n_boot, seed=seed)
    scores: dict[str, dict] = {}
    for kind in kinds:
        emb = ClipEmbedder.open(store_root, kind, model_dir if kind == "contextual" else None)
        X = np.concatenate([emb.shot_vectors(t)[keep[t]] for t in titles])
        scores[kind] = {name: run_probe(X, targets[name], groups, metric, cfg).score
                        for name, _, metric in DIAGNOSTICS}
    tiling = texttiling_scene_end_ap(store, titles, truth, keep)
    ends = targets["scene end"].y
    head = "| embedding | " + " | ".join(f"{n} ({m})" for n, _, m in DIAGNOSTICS) + " |"
    lines = [head, "|---|" + "---|" * len(DIAGNOSTICS)]
    lines += [f"| {k} | " + " | ".join(str(scores[k][n]) for n, _, _ in DIAGNOSTICS) + " |" for k in kinds]
    lines.append(f"| fused, TextTiling score (no probe) | - | - | {tiling:.3f} |")
    lines.append(f"| chance | 0 | {1 / len(tones):.3f} (a constant) | {ends.mean():.3f} |")
    shown = f"{len(groups):,} detected shots" + (f" (a random share of {total:,})" if total > max_shots else "")
    note = (f"{len(titles)} titles, {shown}; per-shot linear probes, 5-fold CV grouped by "
            f"title; brackets: 95% bootstrap interval over titles ({n_boot} resamples).")
    return "\n".join(lines) + "\n\n" + note, scores


def texttiling_scene_end_ap(store, titles: list[str], truth: dict, keep: dict) -> float:
    """AP of TextTiling's boundary score (fused vectors, window 2) of the cut after each shot
    against `scene end`, over the probed shots (`keep[t]`, whose truth `truth[t]` holds) that have a
    next shot."""
    from mediafm.apps.segmentation import boundary_scores
    from mediafm.evaluation.metrics import average_precision

    ys, scores = [], []
    for t in titles:
        score = np.append(boundary_scores(store.features(t), 2), np.nan)[keep[t]]  # no cut after the last shot
        ok = ~np.isnan(score)
        ys.append(truth[t]["scene end"][ok])
        scores.append(score[ok])
    return float(average_precision(np.concatenate(ys), np.concatenate(scores)))


def main(argv: list[str] | None = None) -> int:
    from mediafm.synth.story import STORY_PRESETS, make_story

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("store")
    p.add_argument("model")
    p.add_argument("--titles", type=int, required=True, help="titles the catalog was rendered with")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--catalog", default="narrative", choices=sorted(STORY_PRESETS))
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="embeddings probed (default: all)")
    a = p.parse_args(argv)
    story = STORY_PRESETS[a.catalog]
    stories = {s.title: s for s in (make_story(i, a.seed, story) for i in range(a.titles))}
    table, _ = diagnostics_table(a.store, a.model, stories, kinds=tuple(a.kinds), n_boot=a.n_boot, seed=a.seed)
    print(f"# per-shot diagnostics: {a.catalog} catalog, seed {a.seed}\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
