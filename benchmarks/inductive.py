"""The inductive protocol: pretrain on one half of a catalog's titles, probe the other half (used by tasks.py).

A user pretrains once and applies the model to titles that arrive later. Here the store's titles
are split in two halves by a seeded shuffle; the model is pretrained with the given config on
half A only (a store of links to A's titles, `ablation.link_store`), and fused, contextual-isolated
and contextual are probed on half B's labelled clips (a store of links to B's titles: clips of A
are dropped by the grid), each contextual vector computed by the model that never saw its title.
The oracle of the same clips comes from `tasks.oracle_scores(..., titles=B)`.

Models and grids are cached under ROOT/inductive/, keyed like the lever table's rows (training
config, model/training sources, titles).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

INDUCTIVE_KINDS = ("fused", "contextual-isolated", "contextual")


def halves(title_ids: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(A, B): the titles shuffled with `seed` and cut in two (A gets the extra one), each sorted."""
    order = np.random.default_rng([seed, 40_000]).permutation(sorted(title_ids))
    cut = (len(order) + 1) // 2
    return sorted(order[:cut].tolist()), sorted(order[cut:].tolist())


def inductive_grid(store: Path, labels: Path, root: Path, base, n_boot: int, seed: int) -> dict:
    """Pretrain `base` on half A (cached), probe INDUCTIVE_KINDS on half B. Returns {"cells": grid
    cells, "titles_a", "titles_b", "train_s", "steps"}."""
    import ablation
    from ablation import _key, link_store

    from mediafm.evaluation.grid import run_grid
    from mediafm.evaluation.probes import ProbeConfig
    from mediafm.store.catalog import Store
    from mediafm.training.pretrain import pretrain

    a, b = halves(Store(store).title_ids(), seed)
    out = Path(root) / "inductive"
    key = _key(base, a)
    model_dir = out / f"model-{key}"
    timing = model_dir / "train_time.json"
    if not (model_dir / "model_card.json").exists():
        store_a = link_store(out / f"store-a-{key}", [(Path(store), a)])
        t0 = time.time()
        pretrain(store_a, model_dir, base)
        timing.write_text(json.dumps({"train_s": time.time() - t0}))
    pooling = ablation.GRID_POOLING
    grid_file = out / f"grid-{key}-{n_boot}{ablation.pooling_suffix('-')}-probe-{ablation.probe_key()}.json"
    if not grid_file.exists():
        store_b = link_store(out / f"store-b-{key}", [(Path(store), b)])
        grid = run_grid(store_b, labels, model_dir, INDUCTIVE_KINDS, pooling=pooling,
                        config=ProbeConfig(n_boot=n_boot, seed=seed), progress=False)
        tmp = grid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(grid.to_dict()))
        tmp.replace(grid_file)
    card = json.loads((model_dir / "model_card.json").read_text())
    return {"cells": json.loads(grid_file.read_text())["cells"], "titles_a": a, "titles_b": b,
            "train_s": json.loads(timing.read_text())["train_s"] if timing.exists() else None,
            "steps": card["steps"]}
