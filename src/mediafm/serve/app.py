"""The explorer's FastAPI app: a JSON API (documented at /docs, schema at /openapi.json) and the
static page under /static.

Security model: the server reads only the store's own tables and, for playback, the source file
that a title row names, looked up by title id: no endpoint takes a path. Title ids must be ids
that ingestion can produce (`store.ids.is_title_id`) and be in the store, shot indices must be in
range; anything else is a 404 or 422. Store errors become 404s, never 500s. Requests must name
this server in their Host header (serve/hosts.py: no DNS rebinding). The page renders every
string with `textContent`, and a Content-Security-Policy forbids inline scripts, so subtitle text
or file names cannot inject HTML.

The server never writes to the store and no request scans the catalog: what it reads is cached in
memory (serve/store_view.py), so it serves a read-only store and holds steady under load.
"""

from __future__ import annotations

import logging
import mimetypes
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, TypeAdapter

from mediafm.apps.breaks import BreakConfig
from mediafm.apps.head import HeadError, TrainedHead, load_head
from mediafm.errors import ConfigError, MediafmError, StoreError
from mediafm.search.index import title_vectors
from mediafm.search.hit import Hit
from mediafm.search.query import search_shot
from mediafm.serve import predictions as pred
from mediafm.serve.store_view import MISSING, Catalog, source_name
from mediafm.serve.hosts import HostCheck, allowed_hosts
from mediafm.serve.tags_api import tags_router
from mediafm.serve.workspace import Workspace, WorkspaceError, resolve_embedding
from mediafm.store.catalog import Store
from mediafm.store.ids import MAX_CHARS, TITLE_ID_PATTERN, is_title_id
from mediafm.evaluation.kinds import PER_CLASS_KINDS

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_SHOTS = 10_000_000
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _title_id(value: str) -> str:
    if not is_title_id(value):
        raise ValueError("not a title id")
    return value


# The pattern documents ids in the OpenAPI schema; the validator is the exact rule ingestion follows.
TitleId = Annotated[str, PathParam(pattern=TITLE_ID_PATTERN, max_length=MAX_CHARS), AfterValidator(_title_id)]
ShotIdx = Annotated[int, PathParam(ge=0, le=MAX_SHOTS)]
K = Annotated[int, Query(ge=1, le=100)]
Embedding = Annotated[Literal["fused", "contextual"], Query()]


@dataclass(frozen=True)
class ServeConfig:
    """`mediafm serve` options; CLI flags take their defaults from here."""

    host: str = "127.0.0.1"  # loopback only unless the user asks otherwise
    port: int = 8000
    model_id: str | None = None  # contextual model for the "contextual" embedding
    # Host-header names accepted besides loopback and `host` (e.g. a reverse proxy's name).
    allow_hosts: tuple[str, ...] = ()
    refresh_s: float = 1.0  # how often the server looks for titles added to the store
    cache_mb: int = 256  # memory for cached responses, thumbnails, shot tables and vectors
    heads: tuple[str, ...] = ()  # head folders from `mediafm fit`, or folders holding several
    clips_k: int = 5  # proposed clips shown per title
    break_spacing_s: float = BreakConfig.min_spacing_s  # default spacing of ad-break markers
    workspace: str | None = None  # folder for tags, labels and their heads (the tag loop); None: off


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


class MapPoint(BaseModel):
    shot_index: int
    start_s: float
    x: float
    y: float


class MapOut(BaseModel):
    embedding: str
    explained_variance: list[float]
    points: list[MapPoint]


class HealthOut(BaseModel):
    ready: bool  # start-up warming (indexes, per-title responses) has finished
    titles: int


class HeadOut(BaseModel):
    name: str
    task: str
    classes: list[str]
    embedding: str
    model_id: str | None
    metric: str
    value: float
    n_titles: int


class ShotScore(BaseModel):
    shot_index: int
    start_s: float
    end_s: float
    score: float


class ClipOut(BaseModel):
    rank: int
    start_s: float
    end_s: float
    score: float


class MarkOut(BaseModel):
    shot_index: int  # the cut lies just before this shot
    time_s: float
    score: float


class PredictionsOut(BaseModel):
    head: str | None
    cls: str | None  # the class whose scores are shown (multiclass / multilabel heads)
    shots: list[ShotScore]  # per-shot scores along the timeline (clip heads)
    clips: list[ClipOut]  # proposed clips, best first, not overlapping
    breaks: list[MarkOut]  # ad-break points
    scenes: list[MarkOut]  # cuts that open a scene
    scene_method: str
    break_spacing_s: float


def load_heads(paths: tuple[str, ...]) -> dict[str, TrainedHead]:
    """Heads by folder name from folders that are heads or hold heads; ConfigError on a clash."""
    heads: dict[str, TrainedHead] = {}
    for p in map(Path, paths):
        found = [p] if (p / "card.json").exists() else sorted(d for d in p.glob("*") if (d / "card.json").exists())
        if not found:
            raise ConfigError(p, "no head here (no card.json in it or in its subfolders)")
        for d in found:
            head = load_head(d)
            if head.name in heads:
                raise ConfigError(d, f"two heads named {head.name!r}; rename one folder")
            heads[head.name] = head
    return heads


# ----------------------------------------------------------------------------- the app
_SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                     (b"referrer-policy", b"no-referrer")]


class SecurityHeaders:
    """Adds CSP, nosniff and no-referrer to every response. Plain ASGI: Starlette's
    `@app.middleware("http")` wraps each request in extra tasks and streams (about a millisecond)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _summary(row: dict) -> TitleSummary:
    return TitleSummary(title_id=row["title_id"], name=source_name(row),
                        duration_s=float(row.get("duration_s") or 0.0), n_shots=int(row.get("n_shots") or 0),
                        has_video=bool(row.get("has_video")), has_audio=bool(row.get("has_audio")))


_TITLES = TypeAdapter(list[TitleSummary])


def _json(data: bytes) -> Response:
    return Response(content=data, media_type="application/json")


def create_app(store_root: str | Path, config: ServeConfig | None = None, catalog: Catalog | None = None) -> FastAPI:
    """The explorer app over one store (raises StoreError if `store_root` is not a store)."""
    config = config if config is not None else ServeConfig()
    cat = catalog or Catalog(Store(store_root), config.model_id, config.refresh_s, config.cache_mb)
    if config.model_id is not None and config.model_id not in cat.store.model_ids():
        known = ", ".join(cat.store.model_ids()) or "none: run `mediafm embed`"
        raise ConfigError(cat.store.root, f"no contextual model {config.model_id!r} in this store ({known})")
    heads = load_heads(config.heads)
    app = FastAPI(title="mediafm explorer", version="1",
                  description="Browse a mediafm catalog: titles, shots, thumbnails, nearest shots, text search.")

    app.add_middleware(SecurityHeaders)
    # Added last, so it runs first: a request for another host name gets no further.
    app.add_middleware(HostCheck, allowed=allowed_hosts(config.host, config.allow_hosts))

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        return JSONResponse({"detail": exc.problem}, status_code=422)

    @app.exception_handler(HeadError)
    async def head_error(request: Request, exc: HeadError):
        # The head exists but does not fit this store or title: the request cannot be served.
        return JSONResponse({"detail": exc.problem}, status_code=422)

    @app.exception_handler(WorkspaceError)
    async def workspace_error(request: Request, exc: WorkspaceError):
        # A label, tag name or fit the workspace refuses: the message says what to change.
        return JSONResponse({"detail": exc.problem}, status_code=422)

    @app.exception_handler(MediafmError)
    async def store_error(request: Request, exc: MediafmError):
        # Missing embeddings/index/features for a valid title: the resource does not exist.
        return JSONResponse({"detail": exc.problem}, status_code=404)

    # Endpoints whose answer is usually cached are `async`: a cache hit is answered on the event loop
    # without a thread hand-off; a miss (or a due look at the store) is computed in a worker thread.
    async def fresh() -> None:
        if cat.refresh_due():
            await run_in_threadpool(cat.refresh)

    async def memo(kind: str, key, make, gen: int | None = None):
        hit = cat.peek(kind, key)
        return hit if hit is not MISSING else await run_in_threadpool(cat.memo, kind, key, make, gen)

    def require_title(title_id: str) -> dict:
        row = cat.title(title_id)
        if row is None:
            raise HTTPException(404, f"no title {title_id!r}")
        return row

    async def title_row(title_id: str) -> tuple[int, dict]:
        """(store version, the title's row) or 404."""
        await fresh()
        gen, rows = cat.snapshot()
        row = rows.get(title_id)
        if row is None:
            raise HTTPException(404, f"no title {title_id!r}")
        return gen, row

    async def require_title_async(title_id: str) -> dict:
        return (await title_row(title_id))[1]

    @app.get("/api/titles", response_model=list[TitleSummary], summary="the catalog")
    async def titles():
        await fresh()
        gen, rows = cat.snapshot()
        return _json(await memo("titles", None, lambda: _TITLES.dump_json([_summary(r) for r in rows.values()]), gen))

    def title_detail(title_id: str, row: dict) -> bytes:
        shots = cat.store.shots(title_id)
        n = len(shots)
        tags = {"video_tags": [[] for _ in range(n)], "audio_tags": [[] for _ in range(n)]}
        embeddings = []
        if cat.store.has_features(title_id):
            embeddings.append("fused")
            tags.update(cat.store.feature_tags(title_id))
        if cat.has_contextual(title_id):
            embeddings.append("contextual")
        out = [ShotOut(shot_index=int(s.shot_index), start_s=float(s.start_s), end_s=float(s.end_s),
                       text=str(s.text or ""), text_source=str(s.text_source or ""),
                       video_tags=tags["video_tags"][i], audio_tags=tags["audio_tags"][i])
               for i, s in enumerate(shots.itertuples())]
        return TitleDetail(title=_summary(row), shots=out, embeddings=embeddings).model_dump_json().encode()

    @app.get("/api/titles/{title_id}", response_model=TitleDetail, summary="a title's shots with text and tags")
    async def title(title_id: TitleId):
        gen, row = await title_row(title_id)
        return _json(await memo("title", title_id, lambda: title_detail(title_id, row), gen))

    def _check_shot(row: dict, title_id: str, shot_index: int) -> None:
        if shot_index >= int(row.get("n_shots") or 0):
            raise HTTPException(404, f"title {title_id!r} has no shot {shot_index}")

    def _shot_count(title_id: str, shot_index: int) -> None:
        _check_shot(require_title(title_id), title_id, shot_index)

    @app.get("/api/titles/{title_id}/shots/{shot_index}/thumb.jpg", summary="a shot's thumbnail (JPEG)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def thumb(title_id: TitleId, shot_index: ShotIdx):
        _check_shot(await require_title_async(title_id), title_id, shot_index)
        data = cat.thumb_now(title_id, shot_index)
        if data is MISSING:
            data = await run_in_threadpool(cat.thumb, title_id, shot_index)
        if data is None:
            raise HTTPException(404, f"title {title_id!r} has no frames")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    # HEAD answers as GET does, without the body (players, proxies and link checkers probe with it);
    # left out of the OpenAPI schema, where it would repeat the GET operation.
    app.add_api_route("/api/titles/{title_id}/shots/{shot_index}/thumb.jpg", thumb, methods=["HEAD"],
                      include_in_schema=False, response_class=Response)

    @app.get("/api/titles/{title_id}/video", summary="the title's source video (supports HTTP range requests)",
             response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "partial"}})
    def video(title_id: TitleId):
        row = require_title(title_id)
        # The path comes from the store's own title row, never from the request.
        path = Path(str(row.get("path") or ""))
        try:
            st = path.stat() if row.get("path") else None
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise HTTPException(404, f"source file of {title_id!r} is not available")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, stat_result=st)  # no second stat in a thread

    # FileResponse sends only the headers of a HEAD request (Content-Length, Accept-Ranges, and
    # Content-Range with a Range header), so a player can probe the file before fetching ranges.
    app.add_api_route("/api/titles/{title_id}/video", video, methods=["HEAD"], include_in_schema=False,
                      response_class=FileResponse)

    @app.get("/api/titles/{title_id}/shots/{shot_index}/neighbors", response_model=list[Hit],
             summary="nearest shots across the catalog (the shot itself first)")
    def neighbors(title_id: TitleId, shot_index: ShotIdx, k: K = 10, embedding: Embedding = "fused") -> list[Hit]:
        _shot_count(title_id, shot_index)
        hits = search_shot(cat.store, cat.index(embedding), title_id, shot_index, k, table=cat.shots)
        return hits

    @app.get("/api/search", response_model=list[Hit], summary="shots matching a text query")
    def search(q: Annotated[str, Query(min_length=1, max_length=500)], k: K = 20) -> list[Hit]:
        if not q.strip():
            raise HTTPException(422, "empty query")
        return cat.text_index().search(q.strip(), k)

    def shot_map_json(title_id: str, embedding: str) -> bytes:
        model = cat.index("contextual").info.model_id if embedding == "contextual" else None
        vectors = title_vectors(cat.store, title_id, embedding, model)
        starts = cat.shots.get(title_id)["start_s"].to_numpy(float)
        if len(vectors) != len(starts):  # re-ingested between the two reads, or features of another version
            raise StoreError(cat.store.table_file("features", title_id),
                             f"{len(vectors)} {embedding} vectors for {len(starts)} shots; run `mediafm encode` "
                             "(or try again if the title is being re-ingested)")
        xy, var = pca_2d(vectors)
        points = [MapPoint(shot_index=i, start_s=float(starts[i]), x=float(x), y=float(y)) for i, (x, y) in enumerate(xy)]
        return MapOut(embedding=embedding, explained_variance=var, points=points).model_dump_json().encode()

    @app.get("/api/titles/{title_id}/map", response_model=MapOut, summary="2-D PCA map of a title's shot embeddings")
    async def shot_map(title_id: TitleId, embedding: Embedding = "fused"):
        await require_title_async(title_id)
        return _json(await memo("map", (title_id, embedding), lambda: shot_map_json(title_id, embedding)))

    cat.warmers.append(lambda tid, row, gen: cat.memo("title", tid, lambda: title_detail(tid, row), gen))
    # A title without features raises StoreError, which `warm` skips.
    cat.warmers.append(lambda tid, row, gen: cat.memo("map", (tid, "fused"), lambda: shot_map_json(tid, "fused"), gen))

    @app.get("/api/health", response_model=HealthOut, summary="whether start-up warming has finished")
    async def health():
        return HealthOut(ready=cat.ready.is_set(), titles=len(cat.titles))

    @app.get("/api/heads", response_model=list[HeadOut], summary="the trained heads this server applies")
    def list_heads() -> list[HeadOut]:
        return [HeadOut(name=n, task=h.card.task, classes=list(h.card.classes), embedding=h.card.embedding.kind,
                        model_id=h.card.embedding.model_id, metric=h.card.metric, value=h.card.value,
                        n_titles=h.card.n_titles) for n, h in heads.items()]

    def prediction_variant(h: TrainedHead | None, cls: str | None, spacing: float | None) -> tuple[str | None, float]:
        """(class, spacing) as a response is keyed: a head's first class by default, and the
        default spacing where spacing changes nothing (no head, a scene head)."""
        if h is None or h.card.task not in PER_CLASS_KINDS:
            cls = None  # only a head's classes are meaningful (and each key is a cache entry)
        else:
            cls = cls or h.card.classes[0]
        return cls, config.break_spacing_s if spacing is None or h is None or h.card.task == "scenes" else spacing

    @app.get("/api/titles/{title_id}/predictions", response_model=PredictionsOut,
             summary="a head's scores along the title, proposed clips, ad breaks and scene boundaries")
    async def predictions(title_id: TitleId, head: Annotated[str | None, Query(max_length=200)] = None,
                          cls: Annotated[str | None, Query(max_length=200)] = None,
                          spacing: Annotated[float | None, Query(ge=0, le=86_400)] = None):
        gen, _ = await title_row(title_id)
        h = None
        if head is not None:
            if head not in heads:
                raise HTTPException(404, f"no head {head!r}")
            h = heads[head]
            if cls is not None and h.card.task in PER_CLASS_KINDS and cls not in h.card.classes:
                raise HTTPException(422, f"head {head!r} has no class {cls!r}")
        cls, spacing = prediction_variant(h, cls, spacing)
        return _json(await memo("predictions", (title_id, head, cls, spacing),
                                lambda: predictions_json(title_id, head, h, cls, spacing, gen), gen))

    def predictions_json(title_id: str, name: str | None, h: TrainedHead | None, cls: str | None,
                         spacing: float, gen: int) -> bytes:
        # The costly parts are kept per title (scene cuts) and per (title, head) (every class's
        # scores): another class or spacing is derived from them without reading the store.
        store = cat.store.root
        out = PredictionsOut(head=name, cls=cls, shots=[], clips=[], breaks=[], scenes=[], scene_method="",
                             break_spacing_s=spacing)
        if h is not None and h.card.task != "scenes":
            scores = cat.memo("head-scores", (title_id, name), lambda: pred.head_scores(store, h, title_id), gen)
            col = pred.column(h, cls)
            out.shots = [ShotScore(shot_index=i, start_s=a, end_s=b, score=v) for i, a, b, v in pred.shots(scores, col)]
            out.clips = [ClipOut(rank=r, start_s=a, end_s=b, score=v)
                         for r, a, b, v in pred.top_clips(scores, col, config.clips_k)]
            out.breaks = [MarkOut(shot_index=i, time_s=t, score=v) for i, t, v in pred.breaks(scores, col, spacing)]
        if h is not None and h.card.task == "scenes":
            cuts = cat.memo("scene-cuts", (title_id, name), lambda: pred.scene_cuts(store, title_id, head=h), gen)
        else:  # unsupervised: on contextual embeddings when the title has them
            def unsupervised() -> pred.SceneCuts:
                if cat.has_contextual(title_id):
                    return pred.scene_cuts(store, title_id, embedding="contextual", model_id=cat.contextual_model())
                return pred.scene_cuts(store, title_id, embedding="fused")

            cuts = cat.memo("scene-cuts", (title_id, None), unsupervised, gen)
        out.scene_method = cuts.method
        out.scenes = [MarkOut(shot_index=int(cuts.shot[i]), time_s=float(cuts.time_s[i]), score=float(cuts.score[i]))
                      for i in np.flatnonzero(cuts.boundary)]
        return out.model_dump_json().encode()

    # The page asks for each title it opens the predictions of the head it shows first, with its
    # default class and spacing: made at start-up for every head (and for no head: scenes only).
    def warm_predictions(tid: str, row: dict, gen: int) -> None:
        for name, h in [(None, None), *heads.items()]:
            if cat.generation != gen:
                return
            cls, spacing = prediction_variant(h, None, None)
            try:
                cat.memo("predictions", (tid, name, cls, spacing),
                         lambda: predictions_json(tid, name, h, cls, spacing, gen), gen)
            except MediafmError as exc:  # this head does not fit this title: the request will say so
                log.info("explorer: warming %s predictions of %s: %s", name, tid, exc.problem)

    cat.warmers.append(warm_predictions)

    app.state.workspace = None
    if config.workspace is not None:
        ws = Workspace(config.workspace, cat.store, resolve_embedding(cat.store, config.model_id),
                       model_id=config.model_id)
        app.include_router(tags_router(ws))
        app.state.workspace = ws

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # StaticFiles resolves paths inside STATIC only (it refuses `..` and symlinks out).
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.catalog = cat
    return app


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """[n, D] -> ([n, 2] PCA coordinates, explained variance ratios). Pure; n < 3 gives zeros.

    An exact SVD of the centred vectors, with sklearn's sign convention (each axis's largest
    loading positive), without importing sklearn in a request.
    """
    n = len(vectors)
    x = np.asarray(vectors, np.float64)
    if n < 3 or not np.any(np.ptp(x, axis=0) > 0):
        return np.zeros((n, 2), np.float32), [0.0, 0.0]
    x = x - x.mean(axis=0)
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    signs = np.sign(vt[range(2), np.argmax(np.abs(vt[:2]), axis=1)])
    signs[signs == 0] = 1.0
    xy = u[:, :2] * sv[:2] * signs
    var = sv ** 2
    return xy.astype(np.float32), [float(v) for v in var[:2] / var.sum()]
