"""The applications: train a probe head once, apply it to the titles that arrive later.

    from mediafm.apps import fit, save_head, load_head, predict, tag, top_clips, ad_breaks, scenes

    res = fit("store/", "popularity.csv", "rank", embedding="contextual")
    save_head(res.head, "heads/popularity")
    top_clips("store/", "heads/popularity", titles=["new_film"], k=3)   # a DataFrame

Pure compute (candidate clips, ad-break picking, scene boundaries, thresholds) lives apart from
store reading (`titles`), head files (`head`) and result tables (`tables`).
"""

from mediafm.apps.apply import (Scorer, ad_breaks, break_candidates, predict, scene_cuts, scenes, shot_scores,
                                tag, top_clips)
from mediafm.apps.breaks import BreakConfig
from mediafm.apps.head import HeadCard, HeadError, TrainedHead, load_head, save_head
from mediafm.apps.proposals import ProposalConfig
from mediafm.apps.fitting import FitResult, fit

__all__ = ["BreakConfig", "FitResult", "HeadCard", "HeadError", "ProposalConfig", "Scorer", "TrainedHead",
           "ad_breaks", "break_candidates", "fit", "load_head", "predict", "save_head", "scene_cuts", "scenes",
           "shot_scores", "tag", "top_clips"]
