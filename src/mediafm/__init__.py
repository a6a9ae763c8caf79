"""mediafm: contextual shot-level embeddings for long-form video (an open MediaFM)."""

__version__ = "0.1.0"
