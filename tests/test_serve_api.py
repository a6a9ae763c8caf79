"""Explorer API: catalog, timeline, thumbnails, video ranges, neighbours, search, map, security."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mediafm_testing.stores import add_montage_title, add_random_title, write_tiny_video
from mediafm.serve.app import create_app
from mediafm.store.catalog import Store

EVIL_TEXT = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_media):
    root = tmp_path_factory.mktemp("serve")
    s = Store(root / "store", create=True)
    add_montage_title(s, shared_media)
    video = write_tiny_video(root / "tiny.mp4", 6)
    add_random_title(s, "tiny", 6, dim=192, seed=2, video=video)
    # a title whose subtitle text tries to inject markup
    shots = s.shots("tiny")
    shots.loc[2, "text"] = EVIL_TEXT
    s.write_shots("tiny", shots)
    return s


@pytest.fixture(scope="module")
def client(store):
    # The explorer answers only requests addressed to this machine's names (not httpx's "testserver").
    return TestClient(create_app(store.root), base_url="http://127.0.0.1", raise_server_exceptions=False)


def test_catalog_and_title(client):
    r = client.get("/api/titles")
    assert r.status_code == 200
    titles = {t["title_id"]: t for t in r.json()}
    assert set(titles) == {"montage", "tiny"}
    assert titles["montage"]["name"] == "montage.mp4" and titles["montage"]["n_shots"] == 15
    assert "/" not in titles["tiny"]["name"]  # file names, never server paths
    d = client.get("/api/titles/montage").json()
    assert len(d["shots"]) == 15 and d["embeddings"] == ["fused"]
    assert "fellow Americans" in d["shots"][4]["text"]
    assert d["shots"][4]["audio_tags"] == ["Speech"]
    assert d["shots"][1]["start_s"] == pytest.approx(8.8)


def test_thumbnails_are_jpeg_and_cached_in_memory(client, store):
    r = client.get("/api/titles/montage/shots/3/thumb.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    assert not (store.root / "thumbs").exists()  # the explorer never writes into the store
    assert client.get("/api/titles/montage/shots/3/thumb.jpg").content == r.content
    assert client.get("/api/titles/montage/shots/4/thumb.jpg").content != r.content


def test_video_supports_range_requests(client, shared_media):
    size = (shared_media / "montage.mp4").stat().st_size
    r = client.get("/api/titles/montage/video", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["content-range"] == f"bytes 100-199/{size}"
    assert r.content == (shared_media / "montage.mp4").read_bytes()[100:200]
    full = client.get("/api/titles/tiny/video")
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"


def test_head_answers_like_get_without_a_body(client, store, shared_media):
    size = (shared_media / "montage.mp4").stat().st_size
    r = client.head("/api/titles/montage/video")
    assert r.status_code == 200 and r.content == b""
    assert (r.headers["content-length"], r.headers["accept-ranges"], r.headers["content-type"]) == (str(size), "bytes", "video/mp4")
    r = client.head("/api/titles/montage/video", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == b""
    assert (r.headers["content-length"], r.headers["content-range"]) == ("100", f"bytes 100-199/{size}")
    thumb = client.get("/api/titles/montage/shots/3/thumb.jpg")
    r = client.head("/api/titles/montage/shots/3/thumb.jpg")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-length"] == str(len(thumb.content))
    # The same validation as GET: unknown titles and shots, ids ingestion cannot produce.
    for url in ("/api/titles/nope/video", "/api/titles/montage/shots/15/thumb.jpg", "/api/titles/..%2F..%2Fetc/video",
                "/api/titles/.hidden/video", "/api/titles/montage/shots/-1/thumb.jpg"):
        assert client.head(url).status_code == client.get(url).status_code in (404, 422), url


def test_head_sends_no_body_over_http(store):
    # On a kept-alive connection, body bytes after a HEAD answer would be read as the next response.
    import http.client
    import urllib.parse

    from mediafm_testing.browser import serving

    with serving(create_app(store.root)) as url:
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
        for path in ("/api/titles/tiny/video", "/api/titles/tiny/shots/1/thumb.jpg"):
            conn.request("HEAD", path)
            head = conn.getresponse()
            assert head.status == 200 and head.read() == b"" and int(head.getheader("content-length")) > 0
            conn.request("GET", path)
            get = conn.getresponse()
            assert get.status == 200 and len(get.read()) == int(head.getheader("content-length"))
        conn.close()


def test_neighbours_search_and_map(client):
    hits = client.get("/api/titles/montage/shots/6/neighbors?k=5").json()
    assert (hits[0]["title_id"], hits[0]["shot_index"]) == ("montage", 6) and len(hits) == 5
    found = client.get("/api/search", params={"q": "ask not what your country can do"}).json()
    assert (found[0]["title_id"], found[0]["shot_index"]) == ("montage", 4)
    m = client.get("/api/titles/montage/map").json()
    assert len(m["points"]) == 15 and m["explained_variance"][0] > 0
    xs = [p["x"] for p in m["points"]]
    assert max(xs) > min(xs)


@pytest.mark.parametrize("url", [
    "/api/titles/nope", "/api/titles/nope/video", "/api/titles/montage/shots/15/thumb.jpg",
    "/api/titles/montage/shots/99/neighbors", "/api/titles/nope/map",
    "/api/titles/montage/map?embedding=contextual",  # no contextual embeddings in this store
    "/api/titles/montage/shots/2/neighbors?embedding=contextual",
])
def test_missing_things_are_404(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", [
    "/api/titles/montage/shots/-1/thumb.jpg", "/api/titles/montage/shots/abc/neighbors",
    "/api/titles/montage/shots/1/neighbors?k=0", "/api/titles/montage/shots/1/neighbors?k=100000",
    "/api/titles/montage/shots/1/neighbors?embedding=pixels", "/api/search", "/api/search?q=",
    "/api/search?q=%20%20", "/api/titles/montage/map?embedding=../../etc",
    "/api/titles/..%2F..%2Fetc/video", "/api/titles/.hidden/video", "/api/search?q=" + "x" * 600,
])
def test_bad_parameters_are_422_or_404(client, url):
    assert client.get(url).status_code in (404, 422)


@pytest.mark.parametrize("url", [
    "/api/titles/../../etc/passwd", "/api/titles/%2e%2e/%2e%2e/etc/passwd", "/api/titles/%2e%2e%2f%2e%2e%2fetc%2fpasswd/video",
    "/api/titles/..%252f..%252fetc%252fpasswd/video", "/api/titles//etc/passwd/video", "/api/titles/%2Fetc%2Fpasswd/video",
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fapp.py",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/api/titles/montage/shots/1/..%2f..%2f..%2fvideo",
    "/%2e%2e/%2e%2e/etc/passwd", "/api/titles/montage/video/../../../../etc/passwd",
    "/api/titles/montage/shots/0/thumb.jpg/../../../store.json", "/static/..\\..\\app.py",
])
def test_traversal_attempts_are_refused(client, url):
    r = client.get(url)
    assert r.status_code in (400, 404, 405, 422), (url, r.status_code)
    assert b"root:" not in r.content and b"def create_app" not in r.content and b"mediafm-store" not in r.content


def test_traversal_with_raw_paths(store):
    # httpx normalises `..` in URLs; send raw, un-normalised request targets through the ASGI app.
    import asyncio

    app = create_app(store.root)

    async def raw(path: bytes) -> tuple[int, bytes]:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg):
            sent.append(msg)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path.decode("latin-1"), "raw_path": path, "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80)}
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body

    for p in [b"/static/../app.py", b"/static/../../store/catalog.py", b"/static/../../../../../etc/passwd",
              b"/api/titles/../../etc/passwd/video", b"/static/%2e%2e/app.py", b"/static/" + str(store.root / "store.json").encode()]:
        status, body = asyncio.run(raw(p))
        assert status in (400, 404, 405, 422), (p, status)
        assert b"def create_app" not in body and b"root:" not in body and b"mediafm-store" not in body


def test_no_html_injection(client):
    d = client.get("/api/titles/tiny").json()
    assert d["shots"][2]["text"] == EVIL_TEXT  # returned as data in JSON, rendered with textContent
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    js = client.get("/static/app.js").text
    assert ".innerHTML" not in js and ".outerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/titles", "/api/titles/{title_id}", "/api/search", "/api/titles/{title_id}/map",
            "/api/titles/{title_id}/video", "/api/titles/{title_id}/shots/{shot_index}/neighbors",
            "/api/titles/{title_id}/shots/{shot_index}/thumb.jpg"} <= set(schema["paths"])


def test_serve_binds_loopback_by_default():
    import argparse

    from mediafm.cli import serve

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    args = p.parse_args(["store"])
    assert args.host == "127.0.0.1"


def test_thumb_now_needs_no_store_read_once_frames_are_mapped(store):
    from mediafm.serve.store_view import MISSING, Catalog

    cat = Catalog(store)
    assert cat.thumb_now("montage", 3) is MISSING  # frames not mapped: the caller uses a thread
    made = cat.thumb("montage", 3)
    assert made[:2] == b"\xff\xd8" and cat.thumb_now("montage", 3) == made  # cached
    other = cat.thumb_now("montage", 4)  # same title, frames mapped: cut at once
    assert other is not MISSING and other[:2] == b"\xff\xd8" and other != made
    assert cat.thumb_now("tiny", 0) is MISSING
