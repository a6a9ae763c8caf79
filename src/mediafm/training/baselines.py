"""Masked-shot prediction quality of a model against context-free baselines.

For every masked shot of the given titles' windows (validation masks): mean cosine similarity to
the true fused vector of (a) the model's prediction, (b) the previous shot, (c) the mean of the
two neighbours, (d) the title mean. Baselines use the true (unmasked) neighbour vectors, which is
generous to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mediafm.linalg import l2_normalize
from mediafm.model.transformer import MediaFM
from mediafm.training.data import ShotCache, collate, epoch_windows


@dataclass
class PredictionReport:
    model: float  # mean cosine(model prediction, truth) over masked shots
    previous: float  # copy the previous shot
    neighbours: float  # mean of the two neighbours
    title_mean: float  # mean of the title's shots
    n_masked: int

    def table(self) -> str:
        rows = [("model", self.model), ("copy previous shot", self.previous),
                ("mean of two neighbours", self.neighbours), ("title mean", self.title_mean)]
        return "\n".join(f"{name:<24} {v:.4f}" for name, v in rows) + f"\n(masked shots: {self.n_masked})"


@torch.no_grad()
def masked_prediction_report(model: MediaFM, cache: ShotCache, titles: list[int], window: int, mask_ratio: float,
                             seed: int, batch_size: int = 16) -> PredictionReport:
    model.eval()
    dev = next(model.parameters()).device
    sums = np.zeros(4)
    n = 0
    wins = epoch_windows(cache, titles, window, seed, -1, shuffle=False)
    for b in range(0, len(wins), batch_size):
        chunk = wins[b:b + batch_size]
        batch = collate(cache, chunk, mask_ratio, seed, -1).to(dev)
        pred, _ = model(batch.fused, batch.meta, batch.pad_mask, batch.mask_positions)
        pred = l2_normalize(pred.float().cpu().numpy())
        for j, w in enumerate(chunk):
            a = int(cache.offsets[w.title])
            title = np.asarray(cache.fused[a:a + cache.length(w.title)])
            mean = l2_normalize(title.mean(0))
            for i in np.nonzero(batch.mask_positions[j].cpu().numpy())[0]:
                k = w.start + i  # index within the title
                truth = title[k]
                prev = title[k - 1] if k > 0 else title[k + 1]
                nb = l2_normalize(title[max(k - 1, 0)] + title[min(k + 1, len(title) - 1)])
                sums += [pred[j, i] @ truth, prev @ truth, nb @ truth, mean @ truth]
                n += 1
    s = sums / max(n, 1)
    return PredictionReport(float(s[0]), float(s[1]), float(s[2]), float(s[3]), n)
