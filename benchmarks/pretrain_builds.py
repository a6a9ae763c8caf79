"""Two builds of mediafm, one machine, one store: `mediafm pretrain` end to end, then the same probes.

    python benchmarks/pretrain_builds.py STORE --before 3074222 [--labels-dir DIR]

Pretraining speed measured on different hosts does not compare (a CPU with AMX multiplies bf16
five to six times as fast as one with AVX512-BF16 only). This script checks out the `--before`
commit in a temporary git worktree, makes two stores of links to the store's encoded titles
(features, shots, metadata; no training cache, so each build builds its own), and runs `mediafm
pretrain COPY --out DIR` with no flags under each build, one after the other: the earlier build,
then this checkout's. It prints each run's wall time, steps and best validation loss, and the
ratio. With `--labels-dir`, both models are then probed by this checkout's `mediafm eval
--embeddings contextual` (same folds and resamples). Run it with nothing else on the machine.

Exit status 1 when this checkout's pretraining takes more than `--max-share` (default a quarter)
of the earlier build's time, or when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_store(store: Path, dest: Path) -> Path:
    """A store of links to what pretraining reads of `store` (`ablation.link_store`), without its
    training cache, and a link to its media folder."""
    from ablation import link_store

    from mediafm.store.catalog import Store

    link_store(dest, [(store, Store(store).title_ids())])
    if (store / "media").exists():
        (dest / "media").symlink_to((store / "media").resolve())
    return dest


def pretrain(src: Path, store: Path, out: Path, log: Path) -> dict:
    """`mediafm pretrain store --out out` with the package at `src` first on the path; its wall
    time and model card's steps and best validation loss."""
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call([sys.executable, "-m", "mediafm", "pretrain", str(store), "--out", str(out)],
                             env=env, stdout=f, stderr=subprocess.STDOUT, cwd=src.parent)
    wall = time.perf_counter() - t0
    if rc:
        raise RuntimeError(f"pretraining with {src} failed (exit {rc}); its output is in {log}")
    card = json.loads((out / "model_card.json").read_text())
    return {"seconds": wall, "steps": card.get("steps"), "best_val_loss": card.get("best_val_loss")}


def probe(store: Path, model: Path, labels: Path, out: Path, seed: int) -> dict:
    """This checkout's `mediafm eval` of the model's contextual embedding: {task: score}."""
    subprocess.check_call([sys.executable, "-m", "mediafm", "eval", str(store), "--labels-dir", str(labels),
                           "--out", str(out), "--embeddings", "contextual", "--model", str(model),
                           "--seed", str(seed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = json.loads((out / "eval.json").read_text())["cells"]["contextual"]
    return {task: cell["value"] for task, cell in cells.items() if cell}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", type=Path, help="an ingested and encoded store (e.g. the long-form catalog's)")
    p.add_argument("--before", required=True, help="the earlier build: a commit of this repository")
    p.add_argument("--labels-dir", type=Path, help="also probe both models on these labels")
    p.add_argument("--seed", type=int, default=2, help="probe seed (folds and resamples)")
    p.add_argument("--max-share", type=float, default=0.25,
                   help="this checkout's time as a share of the earlier build's, at most")
    p.add_argument("--keep", type=Path, help="keep the stores, models and logs here (default: a temporary folder)")
    a = p.parse_args(argv)
    if not (a.store / "store.json").exists():
        p.error(f"{a.store} is not a mediafm store (no store.json)")
    work = Path(a.keep or tempfile.mkdtemp(prefix="mediafm-builds-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "before-src"
    subprocess.check_call(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(tree), a.before],
                          stdout=subprocess.DEVNULL)
    rows = {}
    try:
        for name, src in (("before", tree / "src"), ("current", REPO / "src")):
            store = copy_store(a.store, work / f"store-{name}")
            print(f"pretraining with the {name} build ({src}) ...", flush=True)
            rows[name] = pretrain(src, store, work / f"model-{name}", work / f"pretrain-{name}.log")
            if a.labels_dir:
                rows[name]["scores"] = probe(store, work / f"model-{name}", a.labels_dir, work / f"eval-{name}", a.seed)
    finally:
        subprocess.call(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    print(f"\n`mediafm pretrain STORE --out DIR`, no flags, {a.store}; {os.cpu_count()} cores")
    print(f"{'build':<22}{'wall s':>9}{'steps':>7}{'best val':>10}  scores (contextual)")
    for name, label in (("before", a.before), ("current", head or "this checkout")):
        r = rows[name]
        scores = " / ".join(f"{k} {v:.3f}" for k, v in r.get("scores", {}).items())
        print(f"{name + ' ' + label:<22}{r['seconds']:>9.0f}{r['steps']:>7}{r['best_val_loss']:>10.4f}  {scores}")
    share = rows["current"]["seconds"] / rows["before"]["seconds"]
    ok = share <= a.max_share
    print(f"current / before: {share:.3f} ({1 / share:.2f}x as fast); "
          f"{'within' if ok else 'above'} {a.max_share:.0%} of the earlier build's time")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
