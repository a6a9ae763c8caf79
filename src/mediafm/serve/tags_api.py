"""The explorer's tag loop API (`mediafm serve STORE --workspace DIR`): tags, labels, fits, predictions.

Reads are GETs; the three writes (create a tag, label a clip, start a fit) accept only JSON
requests from the page's own origin: a browser sends `Origin` (and `Sec-Fetch-Site`) with every
cross-site write, and those are refused (403), so another site open in the user's browser cannot
label or fit through it. `HostCheck` already refuses requests for other host names (DNS
rebinding). Tag ids in paths must match `workspace.TAG_RE`; request bodies are size-limited and
validated, and the workspace's own checks (a clip inside its title, names, label counts) answer
422 with a message, never a 500.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from mediafm.serve.workspace import TAG_RE, Workspace
from mediafm.store.ids import MAX_CHARS, is_title_id

MAX_BODY = 16 * 1024  # bytes: a write carries one tag name or one label

TagId = Annotated[str, PathParam(pattern=TAG_RE.pattern, max_length=64)]
K = Annotated[int, Query(ge=1, le=200)]


class NewTag(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class LabelIn(BaseModel):
    title: str = Field(min_length=1, max_length=MAX_CHARS)
    start: float = Field(ge=0, le=1e7)
    end: float = Field(gt=0, le=1e7)
    answer: Literal[0, 1] | None  # null removes the clip's label


def same_origin(request: Request) -> None:
    """403 unless a write comes from this server's own page (or from a non-browser client, which
    sends neither header and cannot be made to by another site)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"cross-site write refused ({site})")
    origin = request.headers.get("origin")
    if origin is not None:  # "null" (a sandboxed frame, a file) has no "://" and is refused too
        _, _, netloc = origin.partition("://")
        if not netloc or netloc.lower() != request.headers.get("host", "").lower():
            raise HTTPException(403, f"write from another origin refused ({origin[:100]})")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "writes take a JSON body (Content-Type: application/json)")


def tags_router(ws: Workspace) -> APIRouter:
    r = APIRouter(prefix="/api/tags", tags=["tags"])
    write = [Depends(same_origin)]

    def known(tag: str) -> str:
        try:
            ws.folder(tag)
        except KeyError:
            raise HTTPException(404, f"no tag {tag!r}") from None
        return tag

    @r.get("", summary="the workspace's tags, with label counts and fit state")
    def list_tags():
        return {"embedding": ws.embedding, "workspace": str(ws.root), "tags": ws.tags()}

    @r.post("", status_code=201, dependencies=write, summary="create a tag")
    def create_tag(body: NewTag):
        return ws.create(body.name)

    @r.get("/{tag}", summary="one tag: label counts, what a fit still needs, the fitted head's CV metric")
    def tag_summary(tag: TagId):
        return ws.summary(known(tag))

    @r.get("/{tag}/labels", summary="the tag's labels (optionally of one title)")
    def tag_labels(tag: TagId, title: Annotated[str | None, Query(max_length=MAX_CHARS)] = None):
        return [lb.__dict__ for lb in ws.labels(known(tag)) if title is None or lb.title == title]

    @r.put("/{tag}/labels", dependencies=write, summary="label a clip 1 or 0 (null: remove its label)")
    def put_label(tag: TagId, body: Annotated[LabelIn, Body()]):
        return ws.set_label(known(tag), body.title, body.start, body.end, body.answer)

    @r.post("/{tag}/fit", status_code=202, dependencies=write, summary="fit the tag's head in the background")
    def start_fit(tag: TagId):
        return ws.fit(known(tag))

    @r.get("/{tag}/top", summary="the best-scoring unlabelled clips across the catalog")
    def top(tag: TagId, k: K = 20):
        t0 = time.perf_counter()
        clips = ws.top(known(tag), k)
        return {"clips": clips, "seconds": round(time.perf_counter() - t0, 4)}

    @r.get("/{tag}/suggestions", summary="unlabelled clips where the head is least sure, spread over titles")
    def suggestions(tag: TagId, k: K = 10):
        t0 = time.perf_counter()
        clips = ws.suggestions(known(tag), k)
        return {"clips": clips, "seconds": round(time.perf_counter() - t0, 4)}

    @r.get("/{tag}/titles/{title_id}", summary="the head's score per shot of one title, and its labels there")
    def title_scores(tag: TagId, title_id: Annotated[str, PathParam(max_length=MAX_CHARS)]):
        known(tag)
        if not is_title_id(title_id) or not ws.store.has_title(title_id):
            raise HTTPException(404, f"no title {title_id!r}")
        return ws.title_scores(tag, title_id)

    return r
