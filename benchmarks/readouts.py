"""Clip read-outs compared on one benchmark catalog: the five tasks probed on `mean`, on `mean`
plus the edge read-out's four cut distances only, and on `mean+edges` (evaluation.clips.edge_readout).

    python benchmarks/readouts.py --catalog subtle --seed 1 [--model ablation/model-01e63d7113c5] [--kinds fused contextual]

Reads a folder that `benchmarks/tasks.py` made (its store, labels and default model; `--model`
names another model folder under it, e.g. an ablation row's) and prints one row per (kind,
read-out). Probes, folds and metrics are the grid's (ProbeConfig defaults: fold seed 0, so values
differ from the grid's by fold assignment). No pretraining; about 3-6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from catalog_probes import open_catalog, probe_row, table_head, table_row
from mediafm.evaluation.clips import EDGE_SCALARS, ClipEmbedder, shot_dim
from mediafm.evaluation.probes import ProbeConfig


def clip_features(embedder: ClipEmbedder, clips) -> dict[str, np.ndarray]:
    """[clips, D'] per read-out, in the order of `clips`: the library's `mean+edges` once, the
    other two read-outs its slices ([mean, last shot, change, distances])."""
    X = embedder.embed_many(clips)
    dim = shot_dim(X.shape[1], "mean+edges")
    return {"mean": X[:, :dim], "mean + cut distances": np.concatenate([X[:, :dim], X[:, -EDGE_SCALARS:]], 1),
            "mean+edges": X}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default="narrative")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    ap.add_argument("--model", default="model", help="model folder under the catalog's folder")
    ap.add_argument("--kinds", nargs="+", default=["fused", "contextual"], choices=["video", "audio", "text", "fused",
                                                                                     "contextual"])
    a = ap.parse_args(argv)
    cat = open_catalog(a.cache, a.catalog, a.seed)
    print(f"# clip read-outs: {a.catalog} catalog, seed {a.seed}, model {a.model}, {len(cat.clips)} clips\n")
    print(table_head("kind", "read-out"))
    for kind in a.kinds:
        model = cat.root / a.model if kind == "contextual" else None
        for readout, X in clip_features(ClipEmbedder.open(cat.store, kind, model, "mean+edges"), cat.clips).items():
            print(table_row(kind, readout, probe_row(cat, X, ProbeConfig())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
