"""Training checkpoints that resume exactly, and the model card of a saved model.

    MODEL_DIR/
      model.safetensors, config.json        best-validation weights (what `mediafm embed` loads)
      model_card.json, MODEL_CARD.md        encoders, data size, steps, validation loss
      metrics.csv                           one row per logged step / validation
      checkpoint/                           latest training state:
        model.safetensors, config.json      current weights
        optim.pt                            optimiser states (Muon + AdamW)
        state.json                          step, epoch, batch position, best val, patience
        rng.pt                              torch/numpy/python RNG states
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mediafm.model.mediafm import MediaFM, load_pretrained, save_pretrained
from mediafm.store.atomic import atomic_path, write_json_atomic

CKPT_DIR = "checkpoint"


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
    with atomic_path(d / "optim.pt") as tmp:
        torch.save(optimizer.state_dict(), tmp)
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    with atomic_path(d / "rng.pt") as tmp:
        torch.save(rng, tmp)
    write_json_atomic(asdict(state), d / "state.json")  # last: its presence means the checkpoint is whole


def has_checkpoint(out_dir: Path) -> bool:
    return (Path(out_dir) / CKPT_DIR / "state.json").exists()


def load_checkpoint(out_dir: Path, model: MediaFM, optimizer) -> TrainState:
    d = Path(out_dir) / CKPT_DIR
    state = TrainState(**json.loads((d / "state.json").read_text()))
    src = load_pretrained(d, device=next(model.parameters()).device)
    target = getattr(model, "module", model)
    target = getattr(target, "_orig_mod", target)
    target.load_state_dict(src.state_dict())
    optimizer.load_state_dict(torch.load(d / "optim.pt", weights_only=False))
    rng = torch.load(d / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
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
