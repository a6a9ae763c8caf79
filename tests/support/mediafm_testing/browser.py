"""The explorer served in a thread and the Debian Chromium the browser tests drive (never downloaded)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run the ASGI `app` with uvicorn in a daemon thread on a free local port; yields its URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def browser_page(url: str) -> Iterator:
    """A Chromium page at `url` (1400x1000) whose `errors` list collects the page's JS errors.
    Fails (never skips) when Debian's chromium is missing: `-m browser` asked for it."""
    from pathlib import Path

    import pytest

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(url)
        try:
            yield page
        finally:
            browser.close()


def wait_until(pg, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression from Python: Playwright's wait_for_function evaluates its predicate with
    eval(), which the explorer's Content-Security-Policy (rightly) forbids."""
    end = time.monotonic() + timeout
    while not pg.evaluate(expression):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)
