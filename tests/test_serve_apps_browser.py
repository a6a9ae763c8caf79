"""The explorer's predictions panel in a real headless browser (Debian chromium via Playwright):
per-shot score strip, proposed clips (and playing one), ad-break markers, scene boundaries."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from mediafm.apps import fit, save_head
from mediafm.serve.app import ServeConfig, create_app
from mediafm_testing.browser import browser_page, serving, wait_until
from mediafm_testing.scenes import FAST_PROBE, clip_labels, scene_store

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-apps")
    store, truth = scene_store(root / "store", n_titles=4, seed=7, videos=True)
    labels = clip_labels(truth, root / "labels")
    save_head(fit(store.root, labels / "popularity.csv", "rank", "contextual", config=FAST_PROBE).head, root / "heads" / "popularity")
    save_head(fit(store.root, labels / "tone.csv", "multilabel", "fused", config=FAST_PROBE).head, root / "heads" / "tone")
    app = create_app(store.root, ServeConfig(heads=(str(root / "heads"),)))
    with serving(app) as url:
        yield url, truth


def _get(url: str):
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())


def _count(selector: str) -> str:
    return f"document.querySelectorAll({json.dumps(selector)}).length"


def test_predictions_panel_in_a_real_browser(server):
    base, truth = server
    with browser_page(base + "/") as pg:
        # The first title opens with the first clip head: one bar per shot.
        n0 = len(truth["title00"].starts)
        wait_until(pg, f"{_count('#lane-scores .bar')} === {n0}")
        assert pg.input_value("#head-select") == "popularity"
        api = _get(f"{base}/api/titles/title00/predictions?head=popularity")
        assert pg.locator("#lane-clips .clip").count() == len(api["clips"]) == pg.locator("#clip-list li").count() > 0
        assert pg.locator("#strip .scene").count() == len(api["scenes"]) > 0
        assert pg.input_value("#spacing-input") == str(api["break_spacing_s"]).removesuffix(".0")
        # A closer spacing redraws the ad-break markers from the API.
        pg.fill("#spacing-input", "4")
        pg.dispatch_event("#spacing-input", "change")
        api4 = _get(f"{base}/api/titles/title00/predictions?head=popularity&spacing=4")
        assert len(api4["breaks"]) > 1
        # The legend names the spacing drawn: until it reads 4 s, the markers on the page may still be the
        # first response's, and the redraw could land under the click below.
        wait_until(pg, "document.getElementById('pred-legend').textContent.includes('at least 4 s apart')")
        wait_until(pg, f"{_count('#lane-marks .break')} === {len(api4['breaks'])}")
        shots = [b.get_attribute("data-shot") for b in pg.locator("#lane-marks .break").all()]
        assert shots == [str(b["shot_index"]) for b in api4["breaks"]]
        # Playing a proposed clip loads its span into the player.
        first = api["clips"][0]
        play = "#clip-list li[data-rank='1'] button"
        pg.evaluate(f"() => {{ document.querySelector({json.dumps(play)}).dataset.seen = '1'; }}")
        pg.click(play)
        wait_until(pg, "document.getElementById('player').hasAttribute('src')", 10)
        src = pg.get_attribute("#player", "src")
        assert src.endswith(f"/api/titles/title00/video#t={first['start_s']:.3f},{first['end_s']:.3f}")
        wait_until(pg, "document.getElementById('player').readyState >= 1", 15)
        # The click moved the focus off the edited spacing, which fires "change" once more: the same request
        # must not redraw the list (a redraw between mouse-down and mouse-up swallows the click).
        assert pg.locator(f"{play}[data-seen='1']").count() == 1
        assert pg.locator("#lane-clips .clip.playing[data-rank='1']").count() == 1
        assert "clip #1" in pg.locator("#shot-info").text_content()
        # A multilabel head asks for a class; the strip follows the choice.
        pg.select_option("#head-select", "tone")
        wait_until(pg, "!document.getElementById('class-label').hidden")
        assert [o.get_attribute("value") for o in pg.locator("#class-select option").all()] == ["calm", "tense"]
        pg.select_option("#class-select", "tense")
        wait_until(pg, "document.getElementById('pred-legend').textContent.includes('tone · tense')")
        tense = _get(f"{base}/api/titles/title00/predictions?head=tone&cls=tense")
        titles = [b.get_attribute("title") for b in pg.locator("#lane-scores .bar").all()]
        assert titles == [f"shot #{s['shot_index']}: {s['score']:.3f}" for s in tense["shots"]]
        # Another title redraws the strip for its own shots.
        pg.click("#catalog li[data-title='title01']")
        wait_until(pg, f"{_count('#lane-scores .bar')} === {len(truth['title01'].starts)}")
        out = Path(os.environ.get("MEDIAFM_ARTIFACTS", REPO / "artifacts"))
        out.mkdir(parents=True, exist_ok=True)
        shot = out / "explorer-predictions.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"explorer screenshot: {shot}")
        assert not pg.errors, pg.errors
