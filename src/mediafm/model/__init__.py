"""The contextual shot model (one file: `mediafm.model.mediafm`)."""

from mediafm.model.mediafm import (
    PRESETS,
    MediaFM,
    ModelConfig,
    base,
    distance_bias,
    load_pretrained,
    msm_loss,
    save_pretrained,
    small,
    tiny,
    window_plan,
)

__all__ = ["PRESETS", "MediaFM", "ModelConfig", "base", "distance_bias", "load_pretrained", "msm_loss", "save_pretrained",
           "small", "tiny", "window_plan"]
