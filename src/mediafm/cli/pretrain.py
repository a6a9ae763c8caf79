"""`mediafm pretrain STORE --out MODEL_DIR`: masked shot modeling (also under torchrun).

Each option sets one field of TrainConfig, of its `model` (the choices, not the sizes: those come
from --preset) or of its `optim`. The flag is the field's name with dashes, its default the
dataclass's; a bool has --X and --no-X. OPTIONS gives each its help and the values it accepts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass, replace
from typing import Any, NamedTuple

from mediafm.cli.numbers import count, number
from mediafm.model.transformer import OBJECTIVES, PRESETS, READOUTS, ModelConfig
from mediafm.training.pretrain import TrainConfig


class Option(NamedTuple):
    help: str
    type: Callable[[str], Any] | None = None  # a range check from mediafm.cli.numbers; None: text or a bool
    choices: list[str] | None = None
    flag: str = ""  # the flag when it is not the field's name: the spelling users already have in scripts


# field path in TrainConfig -> how the command line reads it
OPTIONS: dict[str, Option] = {
    "preset": Option("model size", choices=sorted(PRESETS)),
    "model.max_shots": Option("window length in shots", count(2)),
    "model.dropout": Option("dropout on attention output and MLP", number(minimum=0, below=1)),
    "model.time_features": Option("feed shot start/duration to the model"),
    "model.objective": Option("masked-shot loss", choices=list(OBJECTIVES)),
    "model.temperature": Option("InfoNCE temperature", number(above=0)),
    "model.neighbor_weight": Option("weight of the neighbour loss (each shot's output names the shots before and "
                                    "after it)", number(minimum=0)),
    "model.readout": Option("per-shot vector that `mediafm embed` writes", choices=list(READOUTS)),
    "model.boundary_weight": Option("weight of the boundary loss (each shot predicts how much the title changes at "
                                    "the cut after it)", number(minimum=0)),
    "model.modality_dropout": Option("chance that a shot's input loses one modality's block in training (its target "
                                     "stays whole)", number(minimum=0, below=1)),
    "model.distance_bias": Option("attention prior towards nearby shots (ALiBi-style slopes per head)"),
    "use_meta": Option("feed title metadata to [GLOBAL]", flag="--meta"),
    "batch_size": Option("global batch in windows (0: auto, 16 or fewer on small catalogs)", count(0)),
    "epochs": Option("passes over the training windows (0: auto)", count(0)),
    "max_steps": Option("optimiser steps (0: auto, --auto-epochs epochs within [--min-steps, --max-auto-steps])",
                        count(0)),
    "auto_epochs": Option("auto schedule: passes over the training windows", count(1)),
    "min_steps": Option("auto schedule: at least this many steps", count(0)),
    "max_auto_steps": Option("auto schedule: at most this many steps", count(1)),
    "steps_this_run": Option("checkpoint and exit after N steps (for time-limited jobs; continue with --resume)",
                             count(0)),
    "mask_ratio": Option("share of real shots that carry the loss", number(above=0, below=1)),
    "mask_span": Option("mean run length of masked shots", number(minimum=1)),
    "keep_ratio": Option("share of masked shots left visible", number(minimum=0, maximum=1)),
    "random_ratio": Option("share of masked shots shown as another shot", number(minimum=0, maximum=1)),
    "val_fraction": Option("share of titles held out for validation", number(minimum=0, below=1)),
    "val_every": Option("steps between validations (0: auto)", count(0)),
    "patience": Option("early-stopping patience in validations", count(0)),
    "optim.optimizer": Option("muon: Muon for the blocks' matrices, AdamW for the rest; adamw: AdamW only",
                              choices=["muon", "adamw"]),
    "optim.lr": Option("AdamW peak learning rate", number(above=0)),
    "optim.muon_lr": Option("Muon peak learning rate", number(above=0)),
    "optim.weight_decay": Option("decoupled weight decay", number(minimum=0)),
    "optim.betas": Option("AdamW betas", number(minimum=0, below=1)),
    "optim.warmup_steps": Option("linear warmup steps (at most 10%% of the run)", count(0)),
    "optim.min_lr_ratio": Option("the cosine schedule ends at this fraction of the peak", number(minimum=0, maximum=1)),
    "optim.grad_clip": Option("global gradient-norm clip (0: off)", number(minimum=0)),
    "checkpoint_every": Option("steps between checkpoints", count(1)),
    "log_every": Option("steps between metrics.csv rows", count(1)),
    "seed": Option("seed of the weights, masks, batches and validation split", int),
    "device": Option("auto | cpu | cuda"),
    "compile": Option("torch.compile the model"),
    "bf16": Option("bf16 autocast on CUDA and on CPUs with native bf16 products (AVX512-BF16, AMX)"),
    "device_cache": Option("CUDA: gather batches from a copy of the features on the GPU when they fit"),
    "num_threads": Option("torch CPU threads (0: default)", count(0), flag="--threads"),
    "prefetch": Option("batches assembled ahead in a background thread (0: inline; -1: 2 on a GPU, inline on a CPU)",
                       count(-1)),
    "progress": Option("progress bar"),
}


def _names(config: Any) -> list[str]:
    # A ModelConfig's sizes are not settings: the preset and the store's vectors set them.
    return list(config.choices()) if isinstance(config, ModelConfig) else [f.name for f in fields(config)]


def settings(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, value) of every field of `config` a user sets, nested configs walked into."""
    for name in _names(config):
        value = getattr(config, name)
        if is_dataclass(value):
            yield from settings(value, f"{prefix}{name}.")
        else:
            yield prefix + name, value


def flag(path: str) -> str:
    return OPTIONS[path].flag or "--" + path.rpartition(".")[2].replace("_", "-")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="catalog store with encoded titles")
    p.add_argument("--out", required=True, help="model directory to write")
    for path, default in settings(TrainConfig()):
        opt = OPTIONS[path]
        kw: dict[str, Any] = {"dest": path, "default": default, "help": opt.help}
        if isinstance(default, bool):
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw.update(type=opt.type, choices=opt.choices)
            if not opt.choices:  # argparse would name the value by its dotted dest
                kw["metavar"] = flag(path).lstrip("-").replace("-", "_").upper()
            if isinstance(default, tuple):
                kw["nargs"] = len(default)
        action = p.add_argument(flag(path), **kw)
        if "%(default)" not in action.help:  # BooleanOptionalAction adds it itself on some Python versions
            action.help += " (default: %(default)s)"
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    return _filled(TrainConfig(), vars(a))


def _filled(config: Any, values: dict, prefix: str = "") -> Any:
    changes = {}
    for name in _names(config):
        value, path = getattr(config, name), prefix + name
        if is_dataclass(value):
            changes[name] = _filled(value, values, path + ".")
        else:
            changes[name] = tuple(values[path]) if isinstance(value, tuple) else values[path]
    return replace(config, **changes)


def run(args: argparse.Namespace) -> int:
    import os

    from mediafm.training.pretrain import pretrain

    res = pretrain(args.store, args.out, config_from_args(args), resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"{res.model_config.name}: {res.steps} steps, {res.epochs} epochs, stopped by {res.stopped}; "
              f"best validation MSM loss {res.best_val_loss:.4f}; model in {res.out_dir}")
    return 0
