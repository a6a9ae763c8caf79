"""The lever table: pretraining settings x read-outs, probed on one cached store (used by tasks.py).

Each row pretrains a model with the defaults of `TrainConfig` changed by the row's overrides (same
store, same seed, same validation split), then probes the `contextual` embedding of each listed
read-out with the same probes, folds and regularisation search as every other row of the grid.
Models and results are cached under ROOT/ablation/, keyed by the row's full training config, the
model/training sources and the store's titles, so a re-run only computes rows whose config, code
or data changed.

    python benchmarks/ablation.py --store STORE --labels LABELS_DIR --root CACHE [--rows NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

from mediafm.evaluation.clips import DEFAULT_POOLING
from mediafm.training.optim import OptimConfig

# name -> (TrainConfig overrides, read-outs probed). The first row is the previous default. An
# override names a field of TrainConfig or of its model (TrainConfig.override).
READOUTS_PROBED = ("hidden", "hidden+input", "stack+input", "masked+input")
# Every row sets every lever (the previous release's values unless the row changes them) and the
# same budget: at most 1,500 steps, validation every 75, early stopping after 5 without a better
# validation loss. So a row's model does not change when the shipped defaults do.
LEVERS = dict(preset="small", objective="cosine", keep_ratio=0.1, random_ratio=0.0, mask_span=1.0, mask_ratio=0.2,
              neighbor_weight=0.0, distance_bias=False, max_steps=1500, val_every=75)
# LEVERS with these is the shipped TrainConfig defaults (the "distance bias, auto schedule" row).
_DEFAULTS = dict(objective="both", neighbor_weight=0.5, max_steps=0, val_every=0, distance_bias=True)
ROWS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "cosine": (dict(), READOUTS_PROBED),
    "contrastive": (dict(objective="contrastive"), READOUTS_PROBED),
    "cosine + contrastive": (dict(objective="both"), ("hidden", "proj", "masked", "hidden+input", "proj+input",
                                                      "stack+input", "masked+input")),
    "both, keep 20% + random 20%": (dict(objective="both", keep_ratio=0.2, random_ratio=0.2),
                                    ("hidden", "proj", "hidden+input", "proj+input")),
    "both, spans of 3": (dict(objective="both", mask_span=3.0), READOUTS_PROBED),
    "both, medium (512 wide)": (dict(objective="both", keep_ratio=0.2, random_ratio=0.2, preset="medium"),
                                ("hidden", "hidden+input", "stack+input")),
    "both + neighbours, auto schedule": (dict(objective="both", neighbor_weight=0.5, max_steps=0, val_every=0),
                                         ("hidden", "hidden+input", "stack+input")),
    "both + neighbours, batch 4, auto schedule": (dict(objective="both", neighbor_weight=0.5, max_steps=0, val_every=0,
                                                        batch_size=4), ("hidden", "hidden+input", "stack+input")),
    "both + neighbours, distance bias, auto schedule": (dict(objective="both", neighbor_weight=0.5, max_steps=0,
                                                              val_every=0, distance_bias=True),
                                                         ("hidden", "hidden+input", "stack+input", "layers+input",
                                                          "proj+input", "masked+input")),
    # The shipped defaults with one more change each.
    "both + neighbours, distance bias, at least 900 steps": ({**_DEFAULTS, "min_steps": 900},
                                                              ("hidden+input", "stack+input")),
    "both + neighbours, distance bias, spans of 3": ({**_DEFAULTS, "mask_span": 3.0}, ("hidden+input", "stack+input")),
    "both + neighbours, distance bias, medium (512 wide)": ({**_DEFAULTS, "preset": "medium"},
                                                             ("hidden+input", "stack+input")),
    "both + neighbours, distance bias, half the learning rates": ({**_DEFAULTS, "optim": OptimConfig(lr=5e-4, muon_lr=0.01)},
                                                                  ("hidden+input", "stack+input")),
    # Fewer steps at higher peak rates: the same data passes in 4/7 of the steps.
    "both + neighbours, distance bias, 400 steps, 1.5x learning rates": (
        {**_DEFAULTS, "max_steps": 400, "optim": OptimConfig(lr=1.5e-3, muon_lr=0.03)}, ("stack+input",)),
    "both + neighbours, distance bias, modality dropout 0.2": ({**_DEFAULTS, "modality_dropout": 0.2}, ("stack+input",)),
    "both + neighbours, distance bias, boundary loss 1.0": ({**_DEFAULTS, "boundary_weight": 1.0}, ("stack+input",)),
    "both + neighbours, distance bias, boundary loss 0.25": ({**_DEFAULTS, "boundary_weight": 0.25}, ("stack+input",)),
    # Each shot's (log start time, log duration) projected into its input: where it sits in the title.
    "both + neighbours, distance bias, time features": ({**_DEFAULTS, "time_features": True}, ("stack+input",)),
    "both + neighbours, distance bias, 40% masked": ({**_DEFAULTS, "mask_ratio": 0.4}, ("hidden+input", "stack+input")),
    # Runs of 6 on average: about a whole scene of the narrative catalog (3-5 shots) or more.
    "both + neighbours, distance bias, scene-long spans (6)": ({**_DEFAULTS, "mask_span": 6.0},
                                                                ("hidden+input", "stack+input")),
    "both + neighbours, keep 20% + random 20%, auto schedule": (
        dict(objective="both", neighbor_weight=0.5, keep_ratio=0.2, random_ratio=0.2, max_steps=0, val_every=0),
        ("hidden", "hidden+input", "stack+input")),
}


# Rows retrained with other training seeds (each seed also draws another validation split), so a
# difference between two embeddings can be told from the spread of retraining the same row.
REPLICATE_ROWS: dict[str, dict] = {
    "defaults": dict(),
    "dropout 0.1": dict(dropout=0.1),
    "no metadata": dict(use_meta=False),
    "no metadata, dropout 0.1": dict(use_meta=False, dropout=0.1),
    "boundary loss 1.0": dict(boundary_weight=1.0),
    "boundary loss 0.25": dict(boundary_weight=0.25),
    "medium": dict(preset="medium"),
    "no metadata, medium": dict(use_meta=False, preset="medium"),
}


# The clip read-out every grid of these rows is probed with (`tasks.py --grid-pooling`).
GRID_POOLING = DEFAULT_POOLING


def pooling_suffix(sep: str) -> str:
    """What a cached probe result's key adds for GRID_POOLING: nothing for `mean`, which every result
    cached before `mean+cuts` became the default was probed with, so those stay valid."""
    return "" if GRID_POOLING == "mean" else f"{sep}{GRID_POOLING}"
TRAIN_TIME_FILE = "train_time.json"  # in a scaling model's folder: {"train_s": wall seconds of its training}


def _code_digest() -> str:
    """What the cached models depend on besides their config: the model, training and encoder
    sources (the encoders make the fused vectors a model is trained on)."""
    src = Path(__file__).resolve().parents[1] / "src" / "mediafm"
    h = hashlib.sha256()
    for f in sorted([*(src / "model").glob("*.py"), *(src / "training").glob("*.py"), *(src / "encoders").glob("*.py")]):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def probe_key() -> str:
    """What cached probe results depend on besides the model: the probe's defaults and the
    evaluation sources (a change of either probes again)."""
    from mediafm.evaluation.probes import ProbeConfig

    src = Path(__file__).resolve().parents[1] / "src" / "mediafm" / "evaluation"
    h = hashlib.sha256(json.dumps(dataclasses.asdict(ProbeConfig()), sort_keys=True).encode())
    for f in sorted(src.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:8]


def _key(cfg, titles: list[str] | None = None) -> str:
    """Cache key: the full training config, the code it runs (a code change retrains) and, when
    given, the store's titles (a store grown since, e.g. by a larger --titles, retrains)."""
    raw = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str) + _code_digest()
    if titles is not None:
        raw += "\n".join(sorted(titles))
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def with_readout(model_dir: Path, readout: str) -> Path:
    """A model folder with the same weights and another read-out (config.json edited)."""
    if json.loads((model_dir / "config.json").read_text())["model"]["readout"] == readout:
        return model_dir
    out = model_dir.parent / f"{model_dir.name}@{readout.replace('+', '-')}"
    out.mkdir(exist_ok=True)
    for f in ("model.safetensors", "model_card.json"):  # linked, not copied: the same weights
        if (model_dir / f).exists() and not (out / f).exists():
            (out / f).symlink_to((model_dir / f).resolve())
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["model"]["readout"] = readout
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def run_rows(store: Path, labels: Path, root: Path, names: list[str], base=None, n_boot: int = 1000,
             seed: int = 0, kinds: tuple[str, ...] = ("contextual",), rows: dict | None = None,
             levers: dict | None = None) -> list[dict]:
    """Pretrain (or reuse) and probe each named row; returns one record per (row, read-out).

    Rows of ROWS start from LEVERS; custom `rows` start from `base` unless `levers` is given.
    """
    from mediafm.store.catalog import Store
    from mediafm.evaluation.grid import run_grid
    from mediafm.evaluation.probes import ProbeConfig
    from mediafm.training.pretrain import TrainConfig, pretrain

    if rows is None:
        rows, levers = ROWS, LEVERS if levers is None else levers
    base = base or TrainConfig(seed=seed, progress=False)
    root = Path(root) / "ablation"
    root.mkdir(parents=True, exist_ok=True)
    results_file = root / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}

    def save(**new) -> None:
        # Re-read before writing: another run may have added rows meanwhile.
        results.update(new)
        merged = {**(json.loads(results_file.read_text()) if results_file.exists() else {}), **new}
        tmp = results_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=1))
        tmp.replace(results_file)

    titles = Store(store).title_ids()
    out = []
    for name in names:
        overrides, readouts = rows[name]
        cfg = base.override(**{**(levers or {}), **overrides})
        key = _key(cfg, titles)
        model_dir = root / f"model-{key}"
        train_s = results.get(f"{key}/train_s")
        if not (model_dir / "model_card.json").exists():
            t0 = time.time()
            res = pretrain(store, model_dir, cfg)
            train_s = time.time() - t0
            save(**{f"{key}/train_s": train_s, f"{key}/steps": res.steps})
        card = json.loads((model_dir / "model_card.json").read_text())
        for readout in readouts:
            rkey = f"{key}/{readout}/{'+'.join(kinds)}/{n_boot}" + pooling_suffix("/") + f"/probe-{probe_key()}"
            if rkey not in results:
                t0 = time.time()
                grid = run_grid(store, labels, with_readout(model_dir, readout), kinds, pooling=GRID_POOLING,
                                config=ProbeConfig(n_boot=n_boot, seed=seed), progress=False)
                save(**{rkey: {"cells": grid.to_dict()["cells"], "probe_s": time.time() - t0}})
            out.append({"row": name, "readout": readout, "cells": results[rkey]["cells"], "train_s": train_s,
                        "steps": card["steps"], "best_val_loss": card["best_val_loss"]})
            print(format_rows(out[-1:], header=False), flush=True)
    return out


def link_store(out: Path, sources: list[tuple[Path, list[str]]]) -> Path:
    """A store of symbolic links to the given titles of one or more stores (pretraining data scaling).

    Only what pretraining reads is linked: title rows, shots, features and metadata embeddings.
    """
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sources[0][0] / "store.json", out / "store.json")
    for store, tids in sources:
        for table, ext in (("titles", "parquet"), ("shots", "parquet"), ("features", "parquet"), ("meta", "npy")):
            (out / table).mkdir(exist_ok=True)
            for t in tids:
                src, link = store / table / f"{t}.{ext}", out / table / f"{t}.{ext}"
                if src.exists() and not link.exists():
                    link.symlink_to(src)
    return out


def extra_titles(root: Path, seed: int, story_cfg, first: int, total: int) -> Path:
    """Titles first..total-1 of the synthetic catalog (`seed`), rendered, ingested and encoded
    into ROOT/ablation/extra-seedS/store: unlabelled pretraining data beyond the probed titles.
    Cached: a re-run renders and ingests only what is missing."""
    from mediafm.ingest import ingest
    from mediafm.synth.render import RenderConfig, synthesize_catalog
    from mediafm.synth.story import make_story

    base = Path(root) / "ablation" / f"extra-seed{seed}"
    t0 = time.time()
    cat = synthesize_catalog(base / "catalog", total, seed, story_cfg, RenderConfig(), workers=2, first=first)
    print(f"extra titles {first}..{total - 1}: rendered in {time.time() - t0:.0f} s", flush=True)
    paths = [cat.videos / f"{make_story(i, seed, story_cfg).title}.mp4" for i in range(first, total)]
    t0 = time.time()
    report = ingest(paths, base / "store")
    print(f"extra titles: ingest + encode {time.time() - t0:.0f} s\n{report.summary()}", flush=True)
    return base / "store"


def scaling_rows(store: Path, labels: Path, root: Path, sizes: list[int], base, readout: str, n_boot: int,
                 seed: int, story_cfg=None) -> list[dict]:
    """Pretrain the default model on the first k titles (k in sizes), probe `contextual` on the
    store's titles. A k above the store's title count adds titles from the same catalog beyond the
    probed ones (`extra_titles`; needs story_cfg), so pretraining sees more titles than the probes."""
    from mediafm.store.catalog import Store
    from mediafm.evaluation.grid import run_grid
    from mediafm.evaluation.probes import ProbeConfig
    from mediafm.training.pretrain import pretrain

    probed = Store(store).title_ids()
    extra = None
    if max(sizes) > len(probed):
        if story_cfg is None:
            raise ValueError(f"{max(sizes)} pretraining titles need the catalog's story config to render "
                             f"the ones beyond the store's {len(probed)}")
        extra = extra_titles(root, seed, story_cfg, len(probed), max(sizes))
    out = []
    for k in sizes:
        sources = [(store, probed[:k])]
        if k > len(probed):
            sources.append((extra, Store(extra).title_ids()[:k - len(probed)]))
        sub = link_store(Path(root) / "ablation" / f"store-{k}", sources)
        model_dir = Path(root) / "ablation" / f"scaling-{k}-{_key(base)}"
        # The training time is kept next to the model: a re-run from the cache reports it, not the
        # ~0 s of finding the model (None for a model cached before the time was recorded).
        timing = model_dir / TRAIN_TIME_FILE
        if not (model_dir / "model_card.json").exists():
            t0 = time.time()
            pretrain(sub, model_dir, base)
            timing.write_text(json.dumps({"train_s": time.time() - t0}))
        train_s = json.loads(timing.read_text())["train_s"] if timing.exists() else None
        grid = run_grid(store, labels, with_readout(model_dir, readout), ("contextual",), pooling=GRID_POOLING,
                        config=ProbeConfig(n_boot=n_boot, seed=seed), progress=False)
        card = json.loads((model_dir / "model_card.json").read_text())
        out.append({"row": f"pretrained on {k} titles", "readout": readout, "cells": grid.to_dict()["cells"],
                    "train_s": train_s, "steps": card["steps"], "best_val_loss": card["best_val_loss"]})
        print(format_rows(out[-1:], header=False), flush=True)
    return out


def replicate_rows(store: Path, labels: Path, root: Path, base, names: list[str], seeds: list[int], readout: str,
                   n_boot: int, seed: int) -> dict[str, list[dict]]:
    """Each REPLICATE_ROWS row pretrained once per training seed (cached like every row), probed
    as contextual-isolated and contextual; returns {row: one record per seed}."""
    out = {}
    for n in names:
        rows = {f"{n}, training seed {s}": ({**REPLICATE_ROWS[n], "seed": s}, (readout,)) for s in seeds}
        out[n] = run_rows(store, labels, root, list(rows), base=base, n_boot=n_boot, seed=seed,
                          kinds=("contextual-isolated", "contextual"), rows=rows)
    return out


def replicate_summary(name: str, recs: list[dict], fused: dict) -> tuple[str, dict]:
    """Markdown: per task, the mean (min-max) over the trainings of contextual-isolated and
    contextual, how many trainings put contextual above the clip alone (and above fused's upper
    95% bound); and the mean cells, for check_expectation."""
    import numpy as np

    from mediafm.evaluation.grid import TASKS

    k = len(recs)
    lines = [f"| {name}: {k} trainings | " + " | ".join(t.name for t in TASKS) + " |",
             "|---|" + "---|" * len(TASKS)]
    means: dict[str, dict] = {}
    vals = {kind: {t.name: np.array([r["cells"][kind][t.name]["value"] for r in recs]) for t in TASKS}
            for kind in ("contextual-isolated", "contextual")}
    for kind, per in vals.items():
        means[kind] = {t: {"value": float(v.mean())} for t, v in per.items()}
        lines.append(f"| {kind}, mean (min-max) | "
                     + " | ".join(f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})" for v in per.values()) + " |")
    iso, ctx = vals["contextual-isolated"], vals["contextual"]
    lines.append("| contextual - isolated, mean (trainings above) | "
                 + " | ".join(f"{(ctx[t] - iso[t]).mean():+.3f} ({int((ctx[t] > iso[t]).sum())} of {k})"
                              for t in ctx) + " |")
    lines.append("| contextual above fused's upper bound (trainings) | "
                 + " | ".join(f"{int((ctx[t] > fused[t]['ci_high']).sum())} of {k}" for t in ctx) + " |")
    return "\n".join(lines), means


def format_rows(records: list[dict], header: bool = True) -> str:
    from mediafm.evaluation.grid import TASKS

    lines = []
    if header:
        lines += ["| row | read-out | embedding | " + " | ".join(t.name for t in TASKS) + " | steps | pretrain s |",
                  "|---|---|---|" + "---|" * len(TASKS) + "---|---|"]
    for r in records:
        for kind, cells in r["cells"].items():
            vals = []
            for t in TASKS:
                c = cells.get(t.name)
                vals.append("-" if c is None else f"{c['value']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]")
            ts = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
            lines.append(f"| {r['row']} | {r['readout']} | {kind} | " + " | ".join(vals) + f" | {r['steps']} | {ts} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--root", required=True, help="folder for the ablation's models and results")
    p.add_argument("--rows", nargs="*", default=list(ROWS), help="row names (default: all)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--kinds", nargs="*", default=["contextual"])
    a = p.parse_args()
    recs = run_rows(Path(a.store), Path(a.labels), Path(a.root), a.rows, n_boot=a.n_boot, kinds=tuple(a.kinds))
    print()
    print(format_rows(recs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
