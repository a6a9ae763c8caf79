"""Contextual shot embeddings of a whole store from a pretrained model.

    embed_store(STORE, MODEL_DIR) -> STORE/contextual/<model_id>/{model.json, shots/, cls/}

`model_id` is the model's name plus a short hash of its weights file, so two different models
(or two trainings of the same preset) never overwrite each other's embeddings, and the store
records exactly which weights produced them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mediafm.devices import resolve_device
from mediafm.errors import StoreError
from mediafm.model.transformer import CONFIG_FILE, WEIGHTS_FILE, load_pretrained
from mediafm.prefetch import prefetch
from mediafm.store.catalog import Store
from mediafm.store.digest import file_sha256
from mediafm.store.lock import store_lock


@dataclass
class EmbedResult:
    model_id: str
    titles: int  # titles embedded in this run
    skipped: int  # titles already embedded by this model (kept)
    shots: int
    readout: str = "hidden"  # what each shot's vector is (mediafm.model.READOUTS)
    dim: int = 0  # its size


def weights_hash(model_dir: str | Path) -> str:
    return file_sha256(Path(model_dir) / WEIGHTS_FILE)


def model_identity(model_dir: str | Path) -> dict:
    """name, model_id, config and weights hash (what contextual/<model_id>/model.json records)."""
    from mediafm.model.transformer import ModelConfig

    model_dir = Path(model_dir)
    cfg, card = _read_json(model_dir / CONFIG_FILE).get("model"), {}
    if not isinstance(cfg, dict) or not isinstance(cfg.get("name"), str):
        raise StoreError(model_dir / CONFIG_FILE, "not a mediafm model config (no 'model' with a 'name')")
    digest = weights_hash(model_dir)
    card_file = model_dir / "model_card.json"
    if card_file.exists():
        card = _read_json(card_file)
    try:
        mcfg = ModelConfig.from_dict(cfg)
    except (TypeError, ValueError) as exc:
        raise StoreError(model_dir / CONFIG_FILE, f"invalid model config ({exc})") from None
    # Different read-outs of the same weights are different embeddings: the id names the read-out
    # (ids of models with the plain hidden-state read-out are unchanged).
    suffix = "" if mcfg.readout == "hidden" else "-" + mcfg.readout.replace("+", "-")
    return {"model_id": f"{cfg['name']}-{digest[:10]}{suffix}", "name": cfg["name"], "config": cfg,
            "readout": mcfg.readout, "dim": mcfg.embed_dim,
            "weights_sha256": digest, "model_dir": str(model_dir.resolve()),
            "encoders": card.get("encoders"), "best_val_loss": card.get("best_val_loss"),
            "steps": card.get("steps")}


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(path.parent, f"not a mediafm model directory (no {path.name})") from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise StoreError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise StoreError(path, "not a JSON object")
    return obj


def embed_store(store_root: str | Path, model_dir: str | Path, title_ids: list[str] | None = None,
                device: str = "auto", overwrite: bool = False, progress: bool = False) -> EmbedResult:
    """Write per-shot contextual embeddings and [CLS] embeddings for the store's encoded titles.

    Args:
        store_root: the store.
        model_dir: a directory written by `mediafm pretrain`.
        title_ids: titles to embed (default: every encoded title).
        overwrite: recompute titles this model already embedded.

    Returns:
        EmbedResult with the model id and counts.
    """
    store = Store(store_root)
    with store_lock(store.root, "mediafm embed"):
        return _embed_titles(store, model_dir, title_ids, device, overwrite, progress)


def _embed_titles(store: Store, model_dir: str | Path, title_ids: list[str] | None, device: str,
                  overwrite: bool, progress: bool) -> EmbedResult:
    info = model_identity(model_dir)
    device = resolve_device(device)
    model = load_pretrained(model_dir, device=device)
    tids = [t for t in (title_ids if title_ids is not None else store.title_ids()) if store.has_features(t)]
    encoders = store.check_encoders(tids)
    if info["encoders"] is not None and tids and info["encoders"] != encoders:
        raise StoreError(store.root, f"model {info['model_id']} was trained on encoders {info['encoders']} "
                         f"but the store holds {encoders}; re-encode or retrain")
    out = store.contextual_dir(info["model_id"])
    todo = [t for t in tids if overwrite or not (out / "shots" / f"{t}.parquet").exists()]
    skipped = len(tids) - len(todo)

    def inputs(tid: str) -> tuple:
        fused = store.features(tid)
        if fused.shape[1] != model.config.input_dim:
            raise StoreError(store.table_file("features", tid), f"fused dim {fused.shape[1]} does not match "
                             f"the model's input_dim {model.config.input_dim}: the store was encoded with another encoder "
                             f"set than the model's training store (e.g. with or without film descriptors); "
                             f"encode it as that store was, or pretrain on it")
        times = None
        if model.config.time_features:
            sh = store.shots(tid)
            times = sh[["start_s", "end_s"]].to_numpy("float32")
            times[:, 1] -= times[:, 0]
        return tid, fused, store.meta_embedding(tid), times

    # On a GPU the next titles are read in a background thread while this one is embedded.
    it = prefetch((inputs(t) for t in todo), 2 if str(device).startswith("cuda") else 0)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(todo), desc="embed", unit="title")
    done = shots = 0
    for tid, fused, meta, times in it:
        emb, cls = model.embed_title(fused, meta, times, return_cls=True)
        store.write_contextual(info["model_id"], tid, emb, cls, info)
        done, shots = done + 1, shots + len(emb)
    return EmbedResult(info["model_id"], done, skipped, shots, info["readout"], info["dim"])
