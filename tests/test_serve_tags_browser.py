"""The tag loop in a real headless browser (Debian chromium via Playwright): create a tag, label
clips by dragging over shots and pressing keys, fit, see the head's scores and its catalog-wide
predictions, accept a suggestion with one key, reload and find everything there. Screenshots go
to $MEDIAFM_ARTIFACTS (default artifacts/): explorer-tags-*.png, the ones docs/explorer.md shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from mediafm_testing.browser import browser_page, serving, wait_until
from mediafm_testing.scenes import scene_store

from mediafm.serve.app import ServeConfig, create_app

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-tags")
    store, truth = scene_store(root / "store", n_titles=5, seed=11, videos=True)
    app = create_app(store.root, ServeConfig(workspace=str(root / "workspace")))
    with serving(app) as url:
        yield url, truth, root / "workspace"


def _count(selector: str) -> str:
    return f"document.querySelectorAll({json.dumps(selector)}).length"


def _text(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).textContent"


def _shot(pg, index: int):
    return pg.locator(f"#timeline .card[data-shot='{index}']")


def _drag(pg, a: int, b: int) -> None:
    pg.wait_for_selector(f"#timeline .card[data-shot='{b}']")
    _shot(pg, a).hover()
    pg.mouse.down()
    _shot(pg, b).hover()
    pg.mouse.up()


def _screenshot(pg, name: str) -> None:
    out = Path(os.environ.get("MEDIAFM_ARTIFACTS", REPO / "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(out / name), full_page=True)
    print(f"explorer screenshot: {out / name}")


def test_the_tag_loop_in_a_real_browser(server):
    base, truth, workspace = server
    with browser_page(base + "/") as pg:
        wait_until(pg, "!document.getElementById('tags-panel').hidden")
        assert "Create a tag" in pg.locator("#tag-counts").text_content()
        # create a tag
        pg.fill("#tag-name", "Tense scene")
        pg.press("#tag-name", "Enter")
        wait_until(pg, f"{_text('tag-counts')}.startsWith('0 positive')")
        assert pg.input_value("#tag-select") == "tense-scene"
        # label a clip with the mouse and a key: title00 opens first
        t0 = truth["title00"]
        wait_until(pg, f"{_count('#timeline .card')} === {len(t0.starts)}")
        tense = [i for i in range(len(t0.starts)) if t0.tension[t0.scene_of_shot[i]] > 0.5]
        calm = [i for i in range(len(t0.starts)) if t0.tension[t0.scene_of_shot[i]] <= 0.5]
        _drag(pg, tense[0], tense[0] + 1 if tense[0] + 1 in tense else tense[0])
        pg.keyboard.press("p")
        wait_until(pg, f"{_text('tag-counts')}.startsWith('1 positive')")
        wait_until(pg, f"{_count('#timeline .card.lab-pos')} >= 1")
        _drag(pg, calm[0], calm[0])
        pg.click("#label-neg")  # the button does what N does
        wait_until(pg, f"{_text('tag-counts')}.includes('1 negative')")
        # the counts come with the PUT's answer, the marks after the title's labels are read back
        neg_card = f"#timeline .card.lab-neg[data-shot='{calm[0]}']"
        wait_until(pg, f"{_count(neg_card)} === 1")
        # too few labels: fitting says how many more are needed
        pg.click("#fit-button")
        wait_until(pg, f"{_text('fit-status')}.includes('more positive')")
        # the rest of the labels in other titles: one click per shot through the page's own API calls
        labels = []
        for tid in ("title01", "title02", "title03"):
            t = truth[tid]
            for i in range(0, len(t.starts), 2):
                labels.append({"title": tid, "start": float(t.starts[i]), "end": float(t.ends[i]),
                               "answer": int(t.tension[t.scene_of_shot[i]] > 0.5)})
        pg.evaluate("""async (labels) => { for (const l of labels) await sendJSON("PUT", "/api/tags/tense-scene/labels", l); }""",
                    labels)
        pg.click("#catalog li[data-title='title01']")
        wait_until(pg, f"{_count('#timeline .card.lab-pos')} + {_count('#timeline .card.lab-neg')} > 0")
        # fit in the background: the page stays usable and shows the CV metric when done
        pg.click("#fit-button")
        wait_until(pg, f"{_text('fit-status')}.includes('cross-validated AP')", 60)
        wait_until(pg, f"{_count('#lane-tag .tagbar')} === {len(truth['title01'].starts)}")
        # catalog-wide predictions
        pg.click("#top-button")
        wait_until(pg, f"{_count('#review .card.review')} > 0")
        assert "Best-scoring" in pg.locator("#review-title").text_content()
        _screenshot(pg, "explorer-tags-top.png")
        # where is it unsure: accept the first suggestion with one key
        before = pg.locator("#tag-counts").text_content()
        pg.click("#unsure-button")
        wait_until(pg, f"{_text('review-title')}.includes('least sure') && {_count('#review .card.review')} > 0")
        pg.keyboard.press("y")
        wait_until(pg, f"{_count('#review .card.review.answered-yes')} === 1")
        wait_until(pg, f"{_text('tag-counts')} !== {json.dumps(before)}")
        wait_until(pg, f"{_text('fit-status')}.includes('1 label changed since')")
        assert pg.locator("#review .card.review.focused").get_attribute("data-index") == "1"  # on to the next
        _screenshot(pg, "explorer-tags-unsure.png")
        counts = pg.locator("#tag-counts").text_content()
        # reload: the tag, its labels and its head are all there
        pg.reload()
        wait_until(pg, f"{_text('tag-counts')} === {json.dumps(counts)}")
        assert pg.input_value("#tag-select") == "tense-scene"
        wait_until(pg, f"{_text('fit-status')}.includes('cross-validated AP')")
        wait_until(pg, f"{_count('#timeline .card.lab-pos')} >= 1")
        assert not pg.errors, pg.errors
    # the labels are the documented CSV and the head a normal head folder
    rows = (workspace / "tags" / "tense-scene" / "labels.csv").read_text().splitlines()
    assert rows[0] == "title,start,end,label" and len(rows) - 1 == len(labels) + 3
    assert (workspace / "tags" / "tense-scene" / "head" / "card.json").exists()
    assert np.isfinite(json.loads((workspace / "tags" / "tense-scene" / "head" / "card.json").read_text())["value"])
