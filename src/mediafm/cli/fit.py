"""`mediafm fit STORE --labels CSV --task KIND --embedding E --out HEAD_DIR`: train a head once and save it."""

from __future__ import annotations

import argparse
from pathlib import Path

from mediafm.apps.segmentation import DEFAULT_WINDOW
from mediafm.cli._probe import add_probe_options, probe_config
from mediafm.cli.numbers import count
from mediafm.evaluation.kinds import PER_CLASS_KINDS, TASK_KINDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE", help="catalog store")
    p.add_argument("--labels", required=True, metavar="CSV",
                   help="title,start,end,label (docs/tasks.md); for --task scenes one row per scene")
    p.add_argument("--task", required=True, choices=TASK_KINDS)
    p.add_argument("--out", required=True, metavar="HEAD_DIR", help="folder for the head (card.json + weights)")
    p.add_argument("--window", type=count(1), default=DEFAULT_WINDOW,
                   help=f"scenes task: shots on each side of a cut (default: {DEFAULT_WINDOW})")
    add_probe_options(p)


def run(args: argparse.Namespace) -> int:
    from mediafm.apps.head import check_head_dir, save_head
    from mediafm.apps.fitting import fit

    out = Path(args.out)
    check_head_dir(out)  # before the work: a bad --out must not cost a fit
    res = fit(args.store, args.labels, args.task, args.embedding, args.model, args.pooling, probe_config(args),
              args.metric, args.window, progress=True)
    save_head(res.head, out)
    card = res.head.card
    e = card.embedding
    model = f", model {e.model_id}" if e.model_id else ""
    unit = "cuts" if card.task == "scenes" else "clips"
    print(f"{card.task} head on {e.kind} embeddings ({e.dim}-d{model}), {card.n_clips} {unit} from {card.n_titles} titles")
    print(f"grouped {card.folds}-fold CV: {card.metric} {card.value:.4f}  95% CI [{card.ci_low:.4f}, {card.ci_high:.4f}]")
    if card.thresholds:
        names = list(card.classes) if card.task in PER_CLASS_KINDS else [out.name]
        print("thresholds (best F1 on CV scores): " + ", ".join(
            f"{n} {t:.3f} (F1 {f:.2f})" for n, t, f in zip(names, card.thresholds, card.cv_f1)))
    print(f"saved to {out}/")
    return 0
