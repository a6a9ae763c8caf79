"""`mediafm embed STORE --model MODEL_DIR`: contextual shot embeddings into the store."""

from __future__ import annotations

import argparse

from mediafm.devices import DEVICE_HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store with encoded titles")
    p.add_argument("--model", required=True, help="model directory from `mediafm pretrain`")
    p.add_argument("--title", action="append", dest="titles", help="only this title id (repeatable)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--overwrite", action="store_true", help="recompute titles already embedded by this model")


def run(args: argparse.Namespace) -> int:
    from mediafm.training.embed import embed_store

    res = embed_store(args.store, args.model, title_ids=args.titles, device=args.device,
                      overwrite=args.overwrite, progress=True)
    print(f"model {res.model_id} (read-out {res.readout}, {res.dim}-d): embedded {res.titles} titles "
          f"({res.shots} shots), {res.skipped} already done")
    return 0
