"""The contextual shot model (one file: `mediafm.model.transformer`)."""

from mediafm.model.transformer import (
    OBJECTIVES,
    PRESETS,
    READOUTS,
    MediaFM,
    ModelConfig,
    base,
    distance_bias,
    infer_flops,
    load_pretrained,
    medium,
    msm_loss,
    save_pretrained,
    small,
    tiny,
    train_flops,
    window_plan,
)

__all__ = ["OBJECTIVES", "PRESETS", "READOUTS", "MediaFM", "ModelConfig", "base", "distance_bias", "infer_flops", "load_pretrained",
           "medium", "msm_loss", "save_pretrained", "small", "tiny", "train_flops", "window_plan"]
