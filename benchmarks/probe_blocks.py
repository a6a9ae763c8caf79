"""The probe's two settings compared on one benchmark catalog: the regularisation grid and the
equal share of each part of an embedding (ProbeConfig.c_grid, ProbeConfig.blocks; docs/tasks.md).

    python benchmarks/probe_blocks.py [--catalog narrative] [--seed 1] [--kinds fused contextual]

Reads a folder that `benchmarks/tasks.py` made (its store, labels and default model) and prints,
per embedding kind, the five tasks probed four ways: plain per-feature standardisation with the
earlier grid C in {0.001 ... 1}; the current grid alone; equal shares alone; both (the current
defaults). Same clips, folds (seed --seed) and metrics as the grid. No pretraining; about 5
minutes per kind on 2 cores.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from catalog_probes import open_catalog, probe_row, table_head, table_row
from mediafm.evaluation.clips import ClipEmbedder
from mediafm.evaluation.probes import ProbeConfig

EARLIER_GRID = (0.001, 0.01, 0.1, 1.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", default="narrative")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/mediafm/bench-tasks"))
    p.add_argument("--kinds", nargs="+", default=["fused", "contextual"])
    p.add_argument("--n-boot", type=int, default=200)
    a = p.parse_args()
    cat = open_catalog(a.cache, a.catalog, a.seed)
    current = ProbeConfig(n_boot=a.n_boot, seed=a.seed)
    print(f"# probe settings: {cat.root.name}, {len(cat.clips)} clips; current grid C in {current.c_grid}\n")
    print(table_head("embedding", "probe"))
    for kind in a.kinds:
        embedder = ClipEmbedder.open(cat.store, kind, cat.root / "model" if kind.startswith("contextual") else None)
        X = embedder.embed_many(cat.clips)
        blocks = embedder.blocks(X.shape[1], cat.clips[0].title)
        variants = {
            "per feature, earlier grid": replace(current, c_grid=EARLIER_GRID),
            "per feature, current grid": current,
            f"equal shares of {len(blocks)} parts, earlier grid": replace(current, c_grid=EARLIER_GRID, blocks=blocks),
            f"equal shares of {len(blocks)} parts, current grid (default)": replace(current, blocks=blocks),
        }
        for name, cfg in variants.items():
            print(table_row(kind, name, probe_row(cat, X, cfg)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
