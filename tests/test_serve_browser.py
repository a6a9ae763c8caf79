"""The explorer page in a real headless browser (Debian chromium driven by Playwright).

Needs `apt-get install -y chromium` (/usr/bin/chromium); never downloads a browser. The screenshot
is written to $MEDIAFM_ARTIFACTS (default: artifacts/) and its path printed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mediafm.search.text_match import default_text_encoder
from mediafm.serve.app import create_app
from mediafm.store.catalog import Store
from mediafm_testing.browser import browser_page, serving, wait_until
from mediafm_testing.stores import add_montage_title, add_random_title, write_tiny_video

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_media):
    root = tmp_path_factory.mktemp("browser")
    store = Store(root / "store", create=True)
    add_montage_title(store, shared_media)
    add_random_title(store, "city_walk", 12, dim=192, seed=4, video=write_tiny_video(root / "city_walk.mp4", 12))
    shots = store.shots("city_walk")
    shots.loc[0, "text"] = "<b>bold?</b> <script>window.pwned=1</script>"
    store.write_shots("city_walk", shots)
    default_text_encoder()
    with serving(create_app(store.root)) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    with browser_page(server + "/") as pg:
        yield pg


def _loaded_thumbs(pg, selector: str) -> int:
    return pg.eval_on_selector_all(selector, "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")


def test_explorer_in_a_real_browser(page, server):
    pg = page
    # catalog
    pg.wait_for_selector("#catalog li[data-title='montage']")
    assert pg.locator("#catalog li").count() == 2
    # timeline with thumbnails (the first title, city_walk, opens by default; switch to the montage)
    # Quick clicks: the last one wins even if an earlier title's responses arrive later.
    for tid in ("montage", "city_walk", "montage"):
        pg.click(f"#catalog li[data-title='{tid}']")
    wait_until(pg, "document.querySelectorAll('#timeline .card').length === 15")
    time.sleep(0.5)  # time for a late response of the city_walk click to (wrongly) redraw
    assert pg.locator("#timeline .card").count() == 15
    assert pg.locator("#title-name").text_content().startswith("montage")
    wait_until(pg, "[...document.querySelectorAll('#timeline img')].every(i => i.complete && i.naturalWidth > 0)")
    assert _loaded_thumbs(pg, "#timeline img") == 15
    assert "fellow Americans" in pg.locator("#timeline .card[data-shot='4'] .text").text_content()
    # the map is drawn (after its own fetch, which may finish after the thumbnails)
    wait_until(pg, "document.getElementById('map').getContext('2d').getImageData(0,0,360,270).data.some(v => v)")
    # clicking a shot plays its span and shows neighbours with thumbnails
    pg.click("#timeline .card[data-shot='6']")
    pg.wait_for_selector("#neighbors .card")
    first = pg.locator("#neighbors .card").first
    assert (first.get_attribute("data-title"), first.get_attribute("data-shot")) == ("montage", "6")
    assert pg.locator("#neighbors .card").count() >= 10
    wait_until(pg, "[...document.querySelectorAll('#neighbors img')].every(i => i.complete && i.naturalWidth > 0)")
    src = pg.get_attribute("#player", "src")
    assert src.endswith("/api/titles/montage/video#t=41.960,46.520")
    wait_until(pg, "document.getElementById('player').readyState >= 1", 15)
    assert abs(pg.evaluate("document.getElementById('player').duration") - 97.4) < 0.2
    # text search
    pg.fill("#search-input", "ask not what your country can do for you")
    pg.click("#search-form button")
    pg.wait_for_selector("#results .card")
    top = pg.locator("#results .card").first
    assert (top.get_attribute("data-title"), top.get_attribute("data-shot")) == ("montage", "4")
    # subtitle markup is shown as text, never executed
    pg.click("#catalog li[data-title='city_walk']")
    wait_until(pg, "document.querySelectorAll('#timeline .card').length === 12")  # the new timeline
    assert "<script>" in pg.locator("#timeline .card[data-shot='0'] .text").text_content()
    assert pg.evaluate("window.pwned === undefined") and pg.locator("#timeline b").count() == 0
    # Quick clicks: the last one wins even if an earlier title's responses arrive later.
    for tid in ("montage", "city_walk", "montage"):
        pg.click(f"#catalog li[data-title='{tid}']")
    wait_until(pg, "document.querySelectorAll('#timeline .card').length === 15")
    time.sleep(0.5)  # time for a late response of the city_walk click to (wrongly) redraw
    assert pg.locator("#timeline .card").count() == 15
    assert pg.locator("#title-name").text_content().startswith("montage")
    pg.click("#timeline .card[data-shot='4']")
    pg.wait_for_selector("#neighbors .card")
    wait_until(pg, "[...document.querySelectorAll('img')].every(i => i.complete)")
    out = Path(os.environ.get("MEDIAFM_ARTIFACTS", REPO / "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "explorer.png"
    pg.screenshot(path=str(shot), full_page=True)
    print(f"explorer screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert not pg.errors, pg.errors
