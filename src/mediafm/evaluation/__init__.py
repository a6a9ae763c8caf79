"""Downstream tasks on frozen embeddings: clips, label CSVs, linear probes, metrics, the eval grid.

Pure compute (clips pooling, probes, metrics) is separate from I/O (labels CSV, evaluate's reports).
"""
