"""What a clip's vector gains from the shots outside it, on one benchmark catalog: the five tasks
probed on the default read-out, then with the mean of the title's shots appended, with the mean of
the shots around the clip (`mean+near+cuts`'s extra part, evaluation.clips.near_readout), and
with both. The benchmark's oracle (`cues + context`) gives each shot exactly these two means.

    python benchmarks/context_parts.py [--catalog narrative] [--seed 1] [--model ablation/model-...]

Reads a folder that `benchmarks/tasks.py` made (its store, labels and default model; `--model`
names another model folder under it, e.g. the model without metadata) and prints one row per
(embedding kind, clip vector). Same probe settings as the grid (each part weighed equally; fold
seed --seed). No pretraining; about 2-3 minutes per kind on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import numpy as np

from catalog_probes import open_catalog, probe_row, table_head, table_row
from mediafm.evaluation.clips import DEFAULT_POOLING, EDGE_SCALARS, ClipEmbedder, clip_shots, near_readout
from mediafm.evaluation.probes import ProbeConfig


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", default="narrative")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    p.add_argument("--model", default="model", help="model folder, relative to the catalog's folder")
    p.add_argument("--kinds", nargs="+", default=["fused", "contextual"])
    p.add_argument("--n-boot", type=int, default=200)
    a = p.parse_args()
    cat = open_catalog(a.cache, a.catalog, a.seed)
    print(f"# context parts: {cat.root.name}, model {a.model}, {len(cat.clips)} clips, read-out {DEFAULT_POOLING}\n")
    print(table_head("embedding", "clip vector"))
    for kind in a.kinds:
        embedder = ClipEmbedder.open(cat.store, kind, cat.root / a.model if kind.startswith("contextual") else None)
        X = embedder.embed_many(cat.clips)
        blocks = embedder.blocks(X.shape[1], cat.clips[0].title)
        shot = blocks[:-1] if blocks[-1] == EDGE_SCALARS and len(blocks) > 1 else blocks
        title_mean, near, times = [], [], {}
        for c in cat.clips:  # sorted by title: each title's shots read once
            if c.title not in times:
                shots = embedder.store.shots(c.title)
                times = {c.title: (shots["start_s"].to_numpy(float), shots["end_s"].to_numpy(float))}
            v = embedder.shot_vectors(c.title)
            idx, _ = clip_shots(*times[c.title], c)
            title_mean.append(v.mean(axis=0))
            near.append(near_readout(v, idx)[:-EDGE_SCALARS])
        T, N = np.stack(title_mean), np.stack(near)
        variants = {
            f"{DEFAULT_POOLING} (default)": (X, blocks),
            "+ the title's mean": (np.concatenate([X, T], 1), blocks + shot),
            "+ the mean of the shots around the clip": (np.concatenate([X, N], 1), blocks + shot),
            "+ both": (np.concatenate([X, N, T], 1), blocks + shot + shot),
        }
        for name, (Xv, parts) in variants.items():
            cells = probe_row(cat, Xv, ProbeConfig(n_boot=a.n_boot, seed=a.seed, blocks=tuple(parts)))
            print(table_row(kind, name, cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
