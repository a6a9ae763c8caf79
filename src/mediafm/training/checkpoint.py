"""Training checkpoints that resume exactly, and the model card of a saved model.

    MODEL_DIR/
      model.safetensors, config.json        best-validation weights (what `mediafm embed` loads)
      model_card.json, MODEL_CARD.md        encoders, data size, steps, validation loss
      metrics.csv                           one row per logged step / validation
      checkpoint/                           latest training state:
        model.safetensors, config.json      current weights
        optim.safetensors                   optimiser states (Muon + AdamW)
        rng.safetensors                     torch/numpy/python RNG states
        state.json                          step, epoch, batch position, best val, patience

Optimiser and RNG states are written by `state_file.save_state` (safetensors + JSON structure),
never pickled: resuming from a model folder someone handed you runs no code from it.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mediafm.errors import StoreError
from mediafm.model.transformer import MediaFM, load_pretrained, save_pretrained
from mediafm.store.atomic import atomic_path, write_json_atomic
from mediafm.training.state_file import load_state, save_state

CKPT_DIR = "checkpoint"
OPTIM_FILE, RNG_FILE, STATE_FILE = "optim.safetensors", "rng.safetensors", "state.json"
# Written by earlier versions with torch.save (pickle): never loaded.
PICKLED_FILES = ("optim.pt", "rng.pt")


@dataclass
class TrainState:
    step: int = 0  # optimiser steps done
    epoch: int = 0  # current epoch
    batch_in_epoch: int = 0  # global batches of `epoch` already consumed
    best_val: float = float("inf")
    best_step: int = 0
    bad_epochs: int = 0  # validations since the best validation loss (early stopping)
    done: bool = False
    history: list[dict] = field(default_factory=list)  # per-epoch validation records


def save_checkpoint(out_dir: Path, model: MediaFM, optimizer, state: TrainState, train_config: dict) -> None:
    d = Path(out_dir) / CKPT_DIR
    save_pretrained(model, d, extra={"train": train_config})
    save_state(optimizer.state_dict(), d / OPTIM_FILE)
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_state(rng, d / RNG_FILE)
    for name in PICKLED_FILES:
        (d / name).unlink(missing_ok=True)
    write_json_atomic(asdict(state), d / STATE_FILE)  # last: its presence means the checkpoint is whole


def has_checkpoint(out_dir: Path) -> bool:
    return (Path(out_dir) / CKPT_DIR / STATE_FILE).exists()


def load_checkpoint(out_dir: Path, model: MediaFM, optimizer) -> TrainState:
    """Restore weights, optimiser and RNG states; StoreError (one line) for anything damaged or foreign."""
    d = Path(out_dir) / CKPT_DIR
    if not (d / OPTIM_FILE).exists() and any((d / name).exists() for name in PICKLED_FILES):
        raise StoreError(d, "this checkpoint holds pickled training state (optim.pt / rng.pt), which mediafm "
                            "never loads since pickles can run code; pretrain again without --resume")
    try:
        state = TrainState(**json.loads((d / STATE_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(d / STATE_FILE, f"unreadable training state ({type(exc).__name__}: {exc})") from None
    src = load_pretrained(d, device=next(model.parameters()).device)
    target = getattr(model, "module", model)
    target = getattr(target, "_orig_mod", target)
    target.load_state_dict(src.state_dict())
    optim_state, rng = load_state(d / OPTIM_FILE), load_state(d / RNG_FILE)
    try:
        optimizer.load_state_dict(optim_state)
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise StoreError(d, f"the checkpoint does not fit this model or optimiser ({type(exc).__name__}: "
                            f"{str(exc)[:200]})") from None
    return state


def write_model_card(out_dir: Path, card: dict) -> None:
    out_dir = Path(out_dir)
    write_json_atomic(card, out_dir / "model_card.json")
    d = card["data"]
    lines = [f"# {card['name']}", "",
             "Contextual shot-embedding model (MediaFM architecture) pretrained by masked shot modeling.", "",
             f"- preset: `{card['preset']}`, {card['parameters']:,} parameters, hidden size {card['config']['hidden']}",
             f"- encoders: `{json.dumps(card['encoders'], sort_keys=True)}`",
             f"- data: {d['train_titles']} training titles ({d['train_shots']:,} shots), "
             f"{d['val_titles']} validation titles ({d['val_shots']:,} shots)",
             f"- trained: {card['steps']} steps, {card['epochs']} epochs, optimizer `{card['optimizer']}`",
             *([f"- schedule: {card['schedule']['note']}"] if "schedule" in card else []),
             *([f"- objective `{e['objective']}`; embeddings: read-out `{e['readout']}`, {e['dim']} dimensions; "
                f"title metadata {'used' if e['metadata'] else 'not used'}"] if (e := card.get("embedding")) else []),
             f"- best validation MSM loss ({card.get('embedding', {}).get('objective', 'cosine')} objective, "
             f"masked shots): {card['best_val_loss']:.4f} at step {card['best_step']}",
             f"- created {card['created']} with mediafm {card['mediafm_version']}", ""]
    with atomic_path(out_dir / "MODEL_CARD.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
