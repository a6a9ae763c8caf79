"""The explorer: a FastAPI JSON API over a catalog store and a static web page (no build step)."""

from mediafm.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
