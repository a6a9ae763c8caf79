"""`mediafm pretrain STORE --out MODEL_DIR`: masked shot modeling (also under torchrun)."""

from __future__ import annotations

import argparse
import dataclasses

from mediafm.cli.numbers import count, number
from mediafm.model.mediafm import OBJECTIVES, PRESETS, READOUTS
from mediafm.training.optim import OptimConfig
from mediafm.training.pretrain import TrainConfig

_T, _O = TrainConfig(), OptimConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store with encoded titles")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--preset", default=_T.preset, choices=sorted(PRESETS), help="model size")
    p.add_argument("--max-steps", type=count(0), default=_T.max_steps,
                   help=f"optimiser steps (0: auto, {_T.auto_epochs} epochs, at least {_T.min_steps} steps)")
    p.add_argument("--epochs", type=count(0), default=_T.epochs, help="passes over the training windows (0: auto)")
    p.add_argument("--min-steps", type=count(0), default=_T.min_steps, help="auto schedule: at least this many steps")
    p.add_argument("--batch-size", type=count(0), default=_T.batch_size,
                   help="global batch in windows (0: auto, 16 or fewer on small catalogs)")
    p.add_argument("--max-shots", type=count(2), default=_T.max_shots, help="window length in shots")
    p.add_argument("--objective", default=_T.objective, choices=OBJECTIVES, help="masked-shot loss")
    p.add_argument("--temperature", type=number(above=0), default=_T.temperature, help="InfoNCE temperature")
    p.add_argument("--neighbor-weight", type=number(minimum=0), default=_T.neighbor_weight,
                   help="weight of the neighbour loss (each shot's output names the shots before and after it)")
    p.add_argument("--distance-bias", action=argparse.BooleanOptionalAction, default=_T.distance_bias,
                   help="attention prior towards nearby shots (ALiBi-style slopes per head; default %(default)s)")
    p.add_argument("--readout", default=_T.readout, choices=READOUTS,
                   help="per-shot vector that `mediafm embed` writes")
    p.add_argument("--mask-ratio", type=number(above=0, below=1), default=_T.mask_ratio)
    p.add_argument("--mask-span", type=number(minimum=1), default=_T.mask_span, help="mean run length of masked shots")
    p.add_argument("--keep-ratio", type=number(minimum=0, maximum=1), default=_T.keep_ratio, help="share of masked shots left visible")
    p.add_argument("--random-ratio", type=number(minimum=0, maximum=1), default=_T.random_ratio,
                   help="share of masked shots shown as another shot")
    p.add_argument("--no-meta", action="store_true", help="do not feed title metadata to [GLOBAL]")
    p.add_argument("--val-fraction", type=number(minimum=0, below=1), default=_T.val_fraction)
    p.add_argument("--val-every", type=count(0), default=_T.val_every, help="steps between validations (0: auto)")
    p.add_argument("--patience", type=count(0), default=_T.patience, help="early-stopping patience in validations")
    p.add_argument("--optimizer", default=_O.optimizer, choices=["muon", "adamw"])
    p.add_argument("--lr", type=number(above=0), default=_O.lr, help="AdamW peak learning rate")
    p.add_argument("--muon-lr", type=number(above=0), default=_O.muon_lr)
    p.add_argument("--warmup-steps", type=count(0), default=_O.warmup_steps)
    p.add_argument("--time-features", action="store_true", help="feed shot start/duration to the model")
    p.add_argument("--checkpoint-every", type=count(0), default=_T.checkpoint_every)
    p.add_argument("--steps-this-run", type=count(0), default=_T.steps_this_run,
                   help="checkpoint and exit after N steps (for time-limited jobs; continue with --resume)")
    p.add_argument("--seed", type=int, default=_T.seed)
    p.add_argument("--device", default=_T.device, help="auto | cpu | cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast on CUDA")
    p.add_argument("--threads", type=count(0), default=_T.num_threads, help="torch CPU threads (0: default)")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    optim = dataclasses.replace(_O, optimizer=a.optimizer, lr=a.lr, muon_lr=a.muon_lr, warmup_steps=a.warmup_steps)
    return dataclasses.replace(
        _T, preset=a.preset, max_steps=a.max_steps, epochs=a.epochs, min_steps=a.min_steps, batch_size=a.batch_size,
        max_shots=a.max_shots, objective=a.objective, temperature=a.temperature, readout=a.readout,
        neighbor_weight=a.neighbor_weight, distance_bias=a.distance_bias,
        mask_ratio=a.mask_ratio, mask_span=a.mask_span, keep_ratio=a.keep_ratio, random_ratio=a.random_ratio,
        use_meta=not a.no_meta, val_fraction=a.val_fraction, val_every=a.val_every, patience=a.patience,
        optim=optim, time_features=a.time_features, checkpoint_every=a.checkpoint_every,
        steps_this_run=a.steps_this_run, seed=a.seed, device=a.device, compile=a.compile, bf16=not a.no_bf16,
        num_threads=a.threads)


def run(args: argparse.Namespace) -> int:
    import os

    from mediafm.training.pretrain import pretrain

    res = pretrain(args.store, args.out, config_from_args(args), resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"{res.model_config.name}: {res.steps} steps, {res.epochs} epochs, stopped by {res.stopped}; "
              f"best validation MSM loss {res.best_val_loss:.4f}; model in {res.out_dir}")
    return 0
