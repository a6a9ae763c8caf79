"""Learning test: after a short CPU pretraining on structured synthetic titles, masked-shot
prediction on held-out titles beats the context-free baselines by a clear margin."""

from __future__ import annotations

import torch

from mediafm.model import ModelConfig, load_pretrained
from mediafm.training.baselines import masked_prediction_report
from mediafm.training.data import build_cache, split_titles
from mediafm.training.optim import OptimConfig
from mediafm.training.pretrain import TrainConfig, pretrain
from mediafm_testing.synthetic import SyntheticConfig, structured_store


def test_pretraining_beats_context_free_baselines(tmp_path):
    torch.set_num_threads(1)
    structured_store(tmp_path / "store", SyntheticConfig(n_titles=60, seed=1))
    cfg = TrainConfig(preset="tiny", model=ModelConfig(max_shots=64), batch_size=16, epochs=40, patience=100,
                      val_fraction=0.2, progress=False, num_threads=1, optim=OptimConfig(warmup_steps=20))
    res = pretrain(tmp_path / "store", tmp_path / "model", cfg)
    cache = build_cache(tmp_path / "store")
    _, val = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
    rep = masked_prediction_report(load_pretrained(tmp_path / "model"), cache, val, cfg.model.max_shots,
                                   cfg.mask_ratio, cfg.seed)
    print(f"\nheld-out titles: {len(val)}, steps: {res.steps}, best val loss {res.best_val_loss:.4f}")
    print(rep.table())
    best_baseline = max(rep.previous, rep.neighbours, rep.title_mean)
    assert rep.n_masked > 100
    assert rep.model > best_baseline + 0.1, rep.table()
