"""The explorer's FastAPI app: a JSON API (documented at /docs, schema at /openapi.json) and the
static page under /static.

Security model: the server reads only the store's own tables and, for playback, the source file
that a title row names, looked up by title id: no endpoint takes a path. Title ids must match
`TITLE_ID_PATTERN` and be in the store, shot indices must be in range; anything else is a 404 or
422. Store errors become 404s, never 500s. The page renders every string with `textContent`, and a
Content-Security-Policy forbids inline scripts, so subtitle text or file names cannot inject HTML.
"""

from __future__ import annotations

import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pyarrow.parquet as pq
from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from mediafm.errors import ConfigError, MediafmError
from mediafm.search.index import IndexConfig, ShotIndex, open_index, title_vectors, update_index
from mediafm.search.query import Hit, search_shot, search_text
from mediafm.serve.thumbs import get_thumb
from mediafm.store.catalog import Store

STATIC = Path(__file__).parent / "static"
TITLE_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,119}$"  # what store.title_id_for produces
MAX_SHOTS = 10_000_000
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

TitleId = Annotated[str, PathParam(pattern=TITLE_ID_PATTERN, max_length=120)]
ShotIdx = Annotated[int, PathParam(ge=0, le=MAX_SHOTS)]
K = Annotated[int, Query(ge=1, le=100)]
Embedding = Annotated[Literal["fused", "contextual"], Query()]


@dataclass(frozen=True)
class ServeConfig:
    """`mediafm serve` options; CLI flags take their defaults from here."""

    host: str = "127.0.0.1"  # loopback only unless the user asks otherwise
    port: int = 8000
    model_id: str | None = None  # contextual model for the "contextual" embedding


# ----------------------------------------------------------------------------- response models
class TitleSummary(BaseModel):
    title_id: str
    name: str  # the source file's name (not its path)
    duration_s: float
    n_shots: int
    has_video: bool
    has_audio: bool


class ShotOut(BaseModel):
    shot_index: int
    start_s: float
    end_s: float
    text: str
    text_source: str
    video_tags: list[str]
    audio_tags: list[str]


class TitleDetail(BaseModel):
    title: TitleSummary
    shots: list[ShotOut]
    embeddings: list[str]  # which embeddings exist for this title ("fused", "contextual")


class HitOut(BaseModel):
    title_id: str
    shot_index: int
    start_s: float
    end_s: float
    score: float
    text: str


class MapPoint(BaseModel):
    shot_index: int
    start_s: float
    x: float
    y: float


class MapOut(BaseModel):
    embedding: str
    explained_variance: list[float]
    points: list[MapPoint]


def _hit(h: Hit) -> HitOut:
    return HitOut(**h.to_dict())


# ----------------------------------------------------------------------------- the app
class _Catalog:
    """The store plus loaded indexes, reloaded when the index generation changes."""

    def __init__(self, store: Store, config: ServeConfig):
        self.store = store
        self.config = config
        self._lock = threading.Lock()
        self._indexes: dict[str, ShotIndex] = {}

    def title_ids(self) -> set[str]:
        return set(self.store.title_ids())

    def require_title(self, title_id: str) -> dict:
        if title_id not in self.title_ids():
            raise HTTPException(404, f"no title {title_id!r}")
        return self.store.title(title_id)

    def index(self, embedding: str) -> ShotIndex:
        config = IndexConfig(embedding=embedding, model_id=self.config.model_id)
        with self._lock:  # one writer of STORE/index at a time within this server
            info = update_index(self.store, config, progress=False)
            cached = self._indexes.get(embedding)
            if cached is None or cached.info.generation != info.generation:
                cached = self._indexes[embedding] = open_index(self.store, config, update=False)
            return cached


def _summary(row: dict) -> TitleSummary:
    return TitleSummary(title_id=row["title_id"], name=Path(str(row.get("path") or "")).name,
                        duration_s=float(row.get("duration_s") or 0.0), n_shots=int(row.get("n_shots") or 0),
                        has_video=bool(row.get("has_video")), has_audio=bool(row.get("has_audio")))


def create_app(store_root: str | Path, config: ServeConfig | None = None) -> FastAPI:
    """The explorer app over one store (raises StoreError if `store_root` is not a store)."""
    config = config if config is not None else ServeConfig()
    cat = _Catalog(Store(store_root), config)
    app = FastAPI(title="mediafm explorer", version="1",
                  description="Browse a mediafm catalog: titles, shots, thumbnails, nearest shots, text search.")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        return JSONResponse({"detail": exc.problem}, status_code=422)

    @app.exception_handler(MediafmError)
    async def store_error(request: Request, exc: MediafmError):
        # Missing embeddings/index/features for a valid title: the resource does not exist.
        return JSONResponse({"detail": exc.problem}, status_code=404)

    @app.get("/api/titles", response_model=list[TitleSummary], summary="the catalog")
    def titles() -> list[TitleSummary]:
        df = cat.store.titles()
        return [_summary(r) for r in df.to_dict("records")]

    @app.get("/api/titles/{title_id}", response_model=TitleDetail, summary="a title's shots with text and tags")
    def title(title_id: TitleId) -> TitleDetail:
        row = cat.require_title(title_id)
        shots = cat.store.shots(title_id)
        n = len(shots)
        tags = {"video_tags": [[] for _ in range(n)], "audio_tags": [[] for _ in range(n)]}
        embeddings = []
        if cat.store.has_features(title_id):
            embeddings.append("fused")
            names = pq.read_schema(cat.store.root / "features" / f"{title_id}.parquet").names
            cols = [c for c in tags if c in names]
            if cols:
                table = cat.store.feature_table(title_id, cols).to_pydict()
                for c in cols:
                    tags[c] = [list(v or []) for v in table[c]]
        models = cat.store.model_ids()
        model = config.model_id or (models[0] if len(models) == 1 else None)
        if model and (cat.store.contextual_dir(model) / "shots" / f"{title_id}.parquet").exists():
            embeddings.append("contextual")
        out = [ShotOut(shot_index=int(s.shot_index), start_s=float(s.start_s), end_s=float(s.end_s),
                       text=str(s.text or ""), text_source=str(s.text_source or ""),
                       video_tags=tags["video_tags"][i], audio_tags=tags["audio_tags"][i])
               for i, s in enumerate(shots.itertuples())]
        return TitleDetail(title=_summary(row), shots=out, embeddings=embeddings)

    def _shot_count(title_id: str, shot_index: int) -> None:
        row = cat.require_title(title_id)
        if shot_index >= int(row.get("n_shots") or len(cat.store.shots(title_id))):
            raise HTTPException(404, f"title {title_id!r} has no shot {shot_index}")

    @app.get("/api/titles/{title_id}/shots/{shot_index}/thumb.jpg", summary="a shot's thumbnail (JPEG)",
             response_class=FileResponse, responses={200: {"content": {"image/jpeg": {}}}})
    def thumb(title_id: TitleId, shot_index: ShotIdx):
        _shot_count(title_id, shot_index)
        path = get_thumb(cat.store, title_id, shot_index)
        if path is None:
            raise HTTPException(404, f"title {title_id!r} has no frames")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/titles/{title_id}/video", summary="the title's source video (supports HTTP range requests)",
             response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "partial"}})
    def video(title_id: TitleId):
        row = cat.require_title(title_id)
        # The path comes from the store's own title row, never from the request.
        path = Path(str(row.get("path") or ""))
        if not row.get("path") or not path.is_file():
            raise HTTPException(404, f"source file of {title_id!r} is not available")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @app.get("/api/titles/{title_id}/shots/{shot_index}/neighbors", response_model=list[HitOut],
             summary="nearest shots across the catalog (the shot itself first)")
    def neighbors(title_id: TitleId, shot_index: ShotIdx, k: K = 10, embedding: Embedding = "fused") -> list[HitOut]:
        _shot_count(title_id, shot_index)
        return [_hit(h) for h in search_shot(cat.store, cat.index(embedding), title_id, shot_index, k)]

    @app.get("/api/search", response_model=list[HitOut], summary="shots matching a text query")
    def search(q: Annotated[str, Query(min_length=1, max_length=500)], k: K = 20) -> list[HitOut]:
        if not q.strip():
            raise HTTPException(422, "empty query")
        return [_hit(h) for h in search_text(cat.store, q, k)]

    @app.get("/api/titles/{title_id}/map", response_model=MapOut, summary="2-D PCA map of a title's shot embeddings")
    def shot_map(title_id: TitleId, embedding: Embedding = "fused") -> MapOut:
        cat.require_title(title_id)
        model = None
        if embedding == "contextual":
            model = cat.index("contextual").info.model_id
        vectors = title_vectors(cat.store, title_id, embedding, model)
        xy, var = pca_2d(vectors)
        starts = cat.store.shots(title_id)["start_s"].to_numpy(float)
        points = [MapPoint(shot_index=i, start_s=float(starts[i]), x=float(x), y=float(y)) for i, (x, y) in enumerate(xy)]
        return MapOut(embedding=embedding, explained_variance=var, points=points)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # StaticFiles resolves paths inside STATIC only (it refuses `..` and symlinks out).
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.catalog = cat
    return app


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """[n, D] -> ([n, 2] PCA coordinates, explained variance ratios). Pure; n < 3 gives zeros."""
    n = len(vectors)
    if n < 3 or not np.any(np.ptp(vectors, axis=0) > 0):
        return np.zeros((n, 2), np.float32), [0.0, 0.0]
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(np.asarray(vectors, np.float64))
    return xy.astype(np.float32), [float(v) for v in pca.explained_variance_ratio_]

