"""Masked-shot-modeling pretraining, data cache, optimiser, checkpoints and store embedding."""
