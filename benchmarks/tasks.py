"""Benchmark: the MediaFM comparison grid on a synthetic catalog, end to end.

    python benchmarks/tasks.py [--titles 200] [--catalog narrative|long|subtle] [--max-steps 0]
    python benchmarks/tasks.py --titles 200 --inductive   # also: pretrain on half the titles, probe the rest
    python benchmarks/tasks.py --titles 200 --scaling 50 100 400  # pretraining titles (400: 200 more, unlabelled)
    python benchmarks/tasks.py --titles 200 --ablation [ROW ...] # the lever table (benchmarks/ablation.py)

Synthesises the catalog (once; cached with its store and models under --cache), ingests it with
the real shot detector and encoders, pretrains the contextual model with `mediafm pretrain`'s
defaults, embeds, and prints the grid: rows = video, audio, text, fused, contextual-isolated,
contextual (in context); columns = the five tasks, each with a 95% title-bootstrap interval. Then
the same model pretrained without title metadata, and `check_expectation`: contextual at least
fused on every task and above fused's interval on genre, tone and ad relevancy, and above
contextual-isolated on the narrative tasks. Then the oracle of the same clips (the latent cues
probed the same way, `oracle_scores`) and each row's share of it, with `oracle_targets`: the
contextual rows must reach ORACLE_TARGETS of the `cues + context` oracle. `--inductive` adds the
same for a model pretrained on half of the titles and probed on the other half
(benchmarks/inductive.py). The benchmark's latent model is fixed (docs/narrative-benchmark.md); it
is not tuned to make the model win. Exit status 1 when a target is missed or cannot be checked (a
row missing), so a script or CI can tell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> int:
    from mediafm.recipes.demo import DemoConfig, run_demo, train_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--titles", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--catalog", default="narrative", help="synth catalog preset (narrative | long)")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    p.add_argument("--preset", default="small")
    p.add_argument("--max-steps", type=int, default=0, help="pretraining steps (0: pretrain's auto schedule)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--no-meta-rows", action="store_true",
                   help="skip the rows of a model pretrained without title metadata")
    p.add_argument("--ablation", nargs="*", default=None, metavar="ROW",
                   help="run the lever table (benchmarks/ablation.py ROWS; no names: all rows) on this store")
    p.add_argument("--scaling", nargs="*", type=int, default=None, metavar="K",
                   help="also pretrain the default model on K titles: the first K, or beyond --titles more "
                        "titles of the same catalog rendered for pretraining only (probes on the --titles titles)")
    p.add_argument("--replicates", type=int, default=0, metavar="K",
                   help="also retrain the --replicate-rows with training seeds 1..K and report means, spreads "
                        "and how many trainings put contextual above contextual-isolated")
    p.add_argument("--replicate-rows", nargs="*", default=["no metadata"], metavar="ROW",
                   help="rows of benchmarks/ablation.py REPLICATE_ROWS to retrain (default: no metadata)")
    p.add_argument("--oracle", action="store_true",
                   help="no media: probe the latent cues directly, per shot vs with context (a ceiling check)")
    p.add_argument("--inductive", action="store_true",
                   help="also pretrain on half of the titles and probe the other half (benchmarks/inductive.py)")
    p.add_argument("--diagnostics", action="store_true",
                   help="also the per-shot probes: scene tension, scene tone, last shot of a scene "
                        "(benchmarks/shot_diagnostics.py)")
    p.add_argument("--grid-pooling", default=None, metavar="NAME",
                   help="the clip read-out of every grid (default: evaluation.clips.DEFAULT_POOLING; `mean` gives "
                        "the grids measured before `mean+cuts` became the default)")
    p.add_argument("--pooling", default=None, metavar="NAME",
                   help="also the fused and contextual rows with this clip read-out (e.g. mean+edges: "
                        "evaluation.clips.edge_readout), beside the oracle")
    a = p.parse_args()
    import ablation

    from mediafm.evaluation.clips import DEFAULT_POOLING, check_pooling

    grid_pooling = check_pooling(a.grid_pooling or DEFAULT_POOLING)
    ablation.GRID_POOLING = grid_pooling
    if a.oracle:
        from mediafm.synth.story import STORY_PRESETS

        print(oracle_grid(a.titles, a.seed, a.n_boot, STORY_PRESETS[a.catalog]))
        return 0
    # One folder per (catalog, seed): a larger --titles later resumes rendering and ingest (finished
    # titles are kept) and re-runs only pretraining, embedding and probes.
    folder = f"seed{a.seed}" if a.catalog == "narrative" else f"{a.catalog}-seed{a.seed}"
    cfg = DemoConfig(out=str(Path(a.cache) / folder), titles=a.titles, seed=a.seed, catalog=a.catalog,
                     train=train_config(a.seed, a.preset, a.max_steps), n_boot=a.n_boot, apps=False, pooling=grid_pooling)
    t0 = time.time()
    res = run_demo(cfg)
    lay = res.layout
    grid = json.loads((lay.eval / "eval.json").read_text())
    print(f"# mediafm tasks benchmark: {a.titles} synthetic titles ({a.catalog} catalog), seed {a.seed}, "
          f"clip read-out {grid_pooling}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("stage times (s, from the run that produced each stage; cached stages are reused): "
          + ", ".join(f"{k} {v:.0f}" for k, v in res.timings.items()))
    card = json.loads((lay.model / "model_card.json").read_text())
    print(f"model: {card['name']}, {card['steps']} steps ({card.get('schedule', {}).get('note', '')}); "
          f"embedding {card.get('embedding')}\n")
    print(res.grid_md)
    nometa = None
    if not a.no_meta_rows:
        from ablation import REPLICATE_ROWS, format_rows, run_rows

        rows = {"no metadata": (REPLICATE_ROWS["no metadata"], (card["config"]["readout"],))}
        nometa = run_rows(lay.store, lay.labels, lay.root, ["no metadata"], n_boot=a.n_boot, seed=a.seed,
                          kinds=("contextual-isolated", "contextual"), rows=rows,
                          base=cfg.train)[0]
        print("Model pretrained and applied with the [GLOBAL] metadata withheld (same probes):\n")
        print(format_rows([nometa]))
        print()
    ok, text = check_expectation(grid, nometa["cells"] if nometa else None)
    print(text)
    rows = {k: grid["cells"][k] for k in ("fused", "contextual-isolated", "contextual") if grid["cells"].get(k)}
    if nometa:
        rows.update({f"{k}, no metadata": v for k, v in nometa["cells"].items() if v})
    oracle = oracle_scores(a.titles, a.seed, min(a.n_boot, 200), cfg.story())
    print(f"\nShare of the oracle ({a.catalog} catalog: the latent cues probed the same way, no media):\n")
    print(oracle_share(rows, oracle))
    met, text = oracle_targets(rows, oracle, [r for r in ("contextual", "contextual, no metadata") if r in rows])
    print(f"\nShare of the oracle reached (one training; transductive: pretrained on every title):\n{text}")
    ok &= met
    if a.pooling:
        from mediafm.evaluation.grid import run_grid
        from mediafm.evaluation.probes import ProbeConfig

        kinds = ("fused", "contextual-isolated", "contextual")
        other = run_grid(lay.store, lay.labels, lay.model, kinds, pooling=a.pooling,
                         config=ProbeConfig(n_boot=a.n_boot, seed=a.seed), progress=False).to_dict()["cells"]
        print(f"\n# Clip read-out {a.pooling!r} (same model, probes and folds; the rows above are "
              f"{grid_pooling!r})\n")
        print(oracle_share({f"{k}, {a.pooling}": other[k] for k in kinds if other.get(k)}, oracle))
    if a.inductive:
        from inductive import inductive_grid

        ind = inductive_grid(lay.store, lay.labels, lay.root, cfg.train, min(a.n_boot, 200), a.seed)
        orc = oracle_scores(a.titles, a.seed, min(a.n_boot, 200), cfg.story(), titles=ind["titles_b"])
        print(f"\n# Inductive: pretrained on {len(ind['titles_a'])} titles ({ind['steps']} steps, "
              f"{ind['train_s'] or 0:.0f} s), probed on the other {len(ind['titles_b'])}\n")
        print(oracle_share({k: v for k, v in ind["cells"].items() if v}, orc))
        met, text = oracle_targets(ind["cells"], orc, ["contextual"])
        print(f"\nShare of the oracle reached (one training; inductive):\n{text}")
        ok &= met
    if a.diagnostics:
        from shot_diagnostics import diagnostics_table

        from mediafm.synth.story import make_story

        stories = {s.title: s for s in (make_story(i, a.seed, cfg.story()) for i in range(a.titles))}
        table, _ = diagnostics_table(lay.store, lay.model, stories, n_boot=min(a.n_boot, 200), seed=a.seed)
        print(f"\nPer-shot diagnostics (benchmarks/shot_diagnostics.py):\n\n{table}")
    if a.replicates:
        from ablation import format_rows, replicate_rows, replicate_summary

        groups = replicate_rows(lay.store, lay.labels, lay.root, cfg.train, a.replicate_rows,
                                list(range(1, a.replicates + 1)), card["config"]["readout"], a.n_boot, a.seed)
        for name, recs in groups.items():
            print(f"\n# Retrained: {name}, training seeds 1..{a.replicates} (same store, probes and folds)\n")
            print(format_rows(recs))
            table, means = replicate_summary(name, recs, grid["cells"]["fused"])
            print(f"\n{table}\n")
            met, text = check_expectation({"cells": {"fused": grid["cells"]["fused"], **means}},
                                          first=f"{name}, mean of {len(recs)}")
            print(text)
            ok &= met
            # the shares the targets are stated for: the mean of the trainings
            row = f"{name}, mean of {len(recs)}"
            mean_rows = {f"{kind}, {row}": means[kind] for kind in ("contextual-isolated", "contextual")}
            print(f"\n{oracle_share(mean_rows, oracle)}\n")
            met, text = oracle_targets(mean_rows, oracle, [f"contextual, {row}"])
            print(f"Share of the oracle reached (mean of {len(recs)} trainings):\n{text}")
            ok &= met
    if a.scaling:
        from ablation import format_rows, scaling_rows

        recs = scaling_rows(lay.store, lay.labels, lay.root, a.scaling, cfg.train, card["config"]["readout"],
                            a.n_boot, a.seed, story_cfg=cfg.story())
        print(f"\n# Pretraining titles ({a.catalog} catalog; probes on all {a.titles} titles; the full row is the "
              "table above)\n")
        print(format_rows(recs))
    if a.ablation is not None:
        from ablation import ROWS, format_rows, run_rows

        names = a.ablation or list(ROWS)
        recs = run_rows(lay.store, lay.labels, lay.root, names, n_boot=a.n_boot, seed=a.seed, base=cfg.train)
        print(f"\n# Lever table ({a.catalog} catalog, {a.titles} titles; contextual rows; same probes)\n")
        print(format_rows(recs))
    print(f"\nthis invocation: {time.time() - t0:.0f} s")
    return 0 if ok else 1


NARRATIVE_TASKS = ("tone", "ad_relevancy", "popularity", "retrieval")  # depend on the story around a clip
SEPARATE_TASKS = ("genre", "tone", "ad_relevancy")  # contextual must clear fused's 95% interval


def check_expectation(grid: dict, nometa: dict | None = None, first: str = "with metadata") -> tuple[bool, str]:
    """Say, per task, whether contextual beats fused (and fused's interval where required) and
    whether it beats contextual-isolated; the same for the model without metadata. Returns
    (every target met, the text); a row or cell that is missing counts as missed."""
    cells = grid["cells"]
    if not cells.get("contextual") or not cells.get("fused"):
        return False, "expectation not checked: contextual or fused row missing (counted as missed)"
    lines = ["contextual (in context) vs fused and vs contextual-isolated:"]
    ok = True
    models = [(first, cells["contextual"], cells.get("contextual-isolated"))]
    if nometa is not None:
        models.append(("no metadata", nometa.get("contextual") or {}, nometa.get("contextual-isolated")))
    for label, ctx, iso in models:
        for task, f in cells["fused"].items():
            c = ctx.get(task)
            if c is None:
                ok = False
                lines.append(f"  [{label}] {task:13s} no value  <- target missed")
                continue
            need_sep = task in SEPARATE_TASKS
            good = c["value"] >= f["value"] and (c["value"] > f["ci_high"] or not need_sep)
            vs_iso = ""
            if task in NARRATIVE_TASKS:
                i = (iso or {}).get(task)
                beat = i is not None and c["value"] > i["value"]
                good &= beat
                vs_iso = ("; no contextual-isolated value" if i is None else
                          f"; vs isolated {i['value']:.3f}: {'better' if beat else 'NOT better'}")
            ok &= good
            lines.append(f"  [{label}] {task:13s} {c['value']:.3f} vs fused {f['value']:.3f} "
                         f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]: "
                         f"{'better' if c['value'] > f['value'] else 'NOT better'}"
                         + (f", {'above' if c['value'] > f['ci_high'] else 'NOT above'} fused's interval" if need_sep else "")
                         + vs_iso + ("" if good else "  <- target missed"))
    lines.append("all targets met" if ok else "some targets missed (marked)")
    return ok, "\n".join(lines)


ORACLE_ROWS = ("cues (per shot)", "cues + context")


def oracle_scores(n_titles: int, seed: int, n_boot: int, story=None, titles=None) -> dict[str, dict]:
    """Probe the latent per-shot cues themselves (no media, no encoders, no model).

    Row `cues (per shot)`: each shot is the one-hot of what it shows (tone cue, genre motif,
    location, character, shot kind, dialogue-word tone) plus its tension. Row `cues + context`: the
    same, concatenated with the title's mean, the mean of the shot's +-2 neighbours and the next
    shot. The gap between the rows is the context advantage the latent model offers to a perfect
    encoder; it is a property of the catalog (`story`: its StoryConfig, default the narrative
    one), computed before and independently of any learned model, with the grid's clips, labels
    and probes; `titles`, when given, keeps only those titles' clips (the inductive protocol's
    probed half). Returns {row: {task: Score}}.
    """
    import numpy as np

    from mediafm.evaluation.clips import Clip, clip_shots
    from mediafm.evaluation.grid import TASKS
    from mediafm.evaluation.labels import LabeledClip, targets
    from mediafm.evaluation.probes import ProbeConfig, run_probe
    from mediafm.synth.story import (
        GENRES,
        N_CHARACTERS,
        N_LOCATIONS,
        TONES,
        labels_for,
        make_story,
    )

    def one_hot(i, n):
        v = np.zeros(n)
        if i >= 0:
            v[i] = 1
        return v

    stories = [make_story(i, seed, story) for i in range(n_titles)]
    if titles is not None:
        stories = [st for st in stories if st.title in set(titles)]
    rows_by_task = {t.name: [] for t in TASKS}
    feats = {}
    for st in stories:
        per = np.stack([np.concatenate([
            one_hot(TONES.index(s.tone_cue), 4), one_hot(GENRES.index(s.genre_cue), 5),
            one_hot(st.scenes[s.scene].location, N_LOCATIONS), one_hot(s.character, N_CHARACTERS),
            one_hot(int(s.kind == "establishing"), 2), one_hot(TONES.index(s.words_tone) if s.words_tone else -1, 4),
            [st.scenes[s.scene].tension]]) for s in st.shots])
        n = len(per)
        nbr = np.stack([per[max(0, i - 2):i + 3].mean(0) for i in range(n)])
        nxt = np.concatenate([per[1:], np.zeros((1, per.shape[1]))])
        ctx = np.concatenate([per, np.repeat(per.mean(0, keepdims=True), n, 0), nbr, nxt], 1)
        starts = np.array([s.start_s(st.fps) for s in st.shots])
        ends = np.array([s.end_s(st.fps) for s in st.shots])
        feats[st.title] = (per, ctx, starts, ends)
        for name, rows in labels_for(st, story).items():
            rows_by_task[name] += [LabeledClip(Clip(r[0], r[1], r[2]), r[3], 0) for r in rows]
    cfg = ProbeConfig(n_boot=n_boot)
    out: dict[str, dict] = {}
    for row, col in zip(ORACLE_ROWS, (0, 1)):
        out[row] = {}
        for spec in TASKS:
            labelled = rows_by_task[spec.name]
            X = []
            for r in labelled:
                f = feats[r.clip.title]
                idx, _ = clip_shots(f[2], f[3], r.clip)
                X.append(f[col][idx].mean(0))
            out[row][spec.name] = run_probe(np.stack(X), targets(labelled, spec.kind),
                                            np.array([r.clip.title for r in labelled]), spec.metric, cfg).score
    return out


def oracle_grid(n_titles: int, seed: int, n_boot: int, story=None) -> str:
    """The two oracle rows as a markdown table (see `oracle_scores`)."""
    from mediafm.evaluation.grid import TASKS

    scores = oracle_scores(n_titles, seed, n_boot, story)
    lines = ["| oracle features | " + " | ".join(t.name for t in TASKS) + " |", "|---|" + "---|" * len(TASKS)]
    lines += [f"| {row} | " + " | ".join(str(scores[row][t.name]) for t in TASKS) + " |" for row in ORACLE_ROWS]
    return f"# oracle ceiling check: {n_titles} titles, seed {seed} (no media)\n" + "\n".join(lines)


def oracle_share(rows: dict[str, dict], oracle: dict[str, dict]) -> str:
    """Markdown: each model row's value per task, the oracle rows, and each row's share of the
    `cues + context` oracle (value / oracle value). `rows`: {name: {task: value or Score-like dict}}."""
    from mediafm.evaluation.grid import TASKS

    def value(cell):
        return None if cell is None else (cell["value"] if isinstance(cell, dict) else float(cell))

    top = {t.name: oracle["cues + context"][t.name].value for t in TASKS}
    lines = ["| row | " + " | ".join(t.name for t in TASKS) + " |", "|---|" + "---|" * len(TASKS)]
    for row in ORACLE_ROWS:
        lines.append(f"| oracle: {row} | " + " | ".join(f"{oracle[row][t.name].value:.3f}" for t in TASKS) + " |")
    for name, cells in rows.items():
        vals = [value(cells.get(t.name)) for t in TASKS]
        lines.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f} ({v / top[t.name]:.0%})"
                                                 for v, t in zip(vals, TASKS)) + " |")
    return "\n".join(lines) + "\n\n(percent: share of the `cues + context` oracle)"


# Share of the `cues + context` oracle the default contextual embedding must reach, per task.
ORACLE_TARGETS = {"genre": 0.90, "tone": 0.90, "ad_relevancy": 0.90, "popularity": 0.75, "retrieval": 0.75}


def oracle_targets(rows: dict[str, dict], oracle: dict[str, dict], names: list[str]) -> tuple[bool, str]:
    """Whether each named row reaches ORACLE_TARGETS of the `cues + context` oracle on every task,
    genre included for a row named "... no metadata": the metadata can name a title's genre, so
    that row is the one that shows the model finds it. Returns (every target met, the text); the
    text gives shares to a tenth of a percent, so 89.8% does not print as 90%. A missing row or
    cell counts as missed."""
    top = oracle["cues + context"]
    ok, lines = True, []
    for name in names:
        cells = rows.get(name) or {}
        for task, share in ORACLE_TARGETS.items():
            cell = cells.get(task)
            v = None if cell is None else (cell["value"] if isinstance(cell, dict) else float(cell))
            got = None if v is None else v / top[task].value
            good = got is not None and got >= share
            ok &= good
            lines.append(f"  [{name}] {task:13s} " + ("no value" if got is None else f"{got:.1%} of the oracle")
                         + f" (target {share:.0%})" + ("" if good else "  <- target missed"))
    return ok, "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
