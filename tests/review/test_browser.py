"""The review page in a real headless Chromium (Debian's package, driven by Playwright; nothing is downloaded).

Screenshots of each state go to ``$REVIEW_SCREENSHOTS`` (default: the test's temp folder); docs/review.md shows
them. A console error or an uncaught page error fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from streamlabel.config import Config, ReviewConfig
from streamlabel.store import DatasetStore
from tests.review.conftest import CHROMIUM, label_ids, open_page, serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright for Python (the test extra)")


def reviewed(store: DatasetStore) -> list[dict]:
    rows = store.manifest.query("SELECT payload FROM outbox WHERE kind = 'reviewed' ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_accept_with_a_key_then_undo(page, store: DatasetStore, screens: Path) -> None:
    page.goto("/")
    page.wait_for_selector(".card.focused")
    page.screenshot(path=screens / "queue.png")
    first = int(page.get_attribute(".card.focused", "data-id"))
    page.keyboard.press("a")
    page.wait_for_selector(f'.card[data-id="{first}"]', state="detached")
    assert first in label_ids(store, "accepted")
    frame = store.manifest.frame(store.manifest.query("SELECT frame_id FROM labels WHERE id = ?", (first,))[0][0])
    assert frame["split"] == "dataset" and (store.root / frame["image"]).is_file()
    assert [(e["label_id"], e["status"]) for e in reviewed(store)] == [(first, "accepted")]
    page.wait_for_selector(".card.focused")
    assert int(page.get_attribute(".card.focused", "data-id")) != first
    page.keyboard.press("u")
    page.wait_for_selector(f'.card[data-id="{first}"]')
    assert first in label_ids(store, "review")
    assert [e["decision"] for e in reviewed(store)] == ["accept", "undo"]


def test_arrows_select_and_batch_reject(page, store: DatasetStore, screens: Path) -> None:
    page.goto("/")
    page.wait_for_selector(".card.focused")
    ids = [int(v) for v in page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")]
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    assert int(page.get_attribute(".card.focused", "data-id")) == ids[1]
    page.keyboard.press("x")
    page.screenshot(path=screens / "queue-selected.png")
    page.keyboard.press("Shift+R")
    page.wait_for_selector(".flash.ok")
    assert set(ids[:2]) <= set(label_ids(store, "rejected"))
    assert [int(v) for v in page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")] == ids[2:]


def test_item_view_keys(page, store: DatasetStore, screens: Path) -> None:
    page.goto("/")
    page.wait_for_selector(".card.focused")
    first, second = [int(v) for v in page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.id)")][:2]
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/items/{first}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=screens / "item.png")
    page.keyboard.press("?")
    assert page.is_visible("dialog#help") and "accept and open the next item" in page.inner_text("dialog#help")
    page.screenshot(path=screens / "help.png")
    page.keyboard.press("?")
    page.keyboard.press("m")
    assert "bare" in page.get_attribute("#frame", "class")
    page.keyboard.press("m")
    page.keyboard.press("a")
    page.wait_for_url(f"**/items/{second}")
    assert first in label_ids(store, "accepted")
    page.keyboard.press("ArrowLeft")  # the accepted item left the queue: back goes to the one before the second
    page.wait_for_load_state("networkidle")
    assert f"/items/{first}" not in page.url


def test_token_is_asked_for_and_requests_without_it_are_refused(browser, store: DatasetStore, screens: Path) -> None:
    cfg = Config(review=ReviewConfig(token=SecretStr("s3cret-token")))
    for page in open_page(browser, serve(store, cfg)):
        assert page.request.get("/", headers={"accept": "application/json"}).status == 401
        page.goto("/")
        page.wait_for_selector("form.login")
        assert "/login" in page.url
        page.screenshot(path=screens / "login.png")
        page.fill("input[name=token]", "s3cret-token")
        page.fill("input[name=name]", "ana")
        page.click("button[type=submit]")
        page.wait_for_selector(".card.focused")
        first = int(page.get_attribute(".card.focused", "data-id"))
        page.keyboard.press("a")
        page.wait_for_selector(f'.card[data-id="{first}"]', state="detached")
        assert reviewed(store)[0]["who"] == "ana"


def test_live_view_refreshes_itself(page, store: DatasetStore, screens: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.review.conftest import fill

    fill(store, "garden", [["accepted", "review"]], start=datetime.now(UTC) - timedelta(seconds=30))
    page.goto("/live")
    page.wait_for_selector(".panel img")
    page.wait_for_load_state("networkidle")
    assert page.locator(".panel").count() == 2
    page.screenshot(path=screens / "live-refresh.png")
    fill(store, "porch", [["review"]], start=datetime.now(UTC))
    page.wait_for_function("document.querySelectorAll('.panel').length === 3", timeout=15_000)


def test_the_second_tab_gets_a_conflict_message(browser, store: DatasetStore, cfg: Config, screens: Path) -> None:
    server = serve(store, cfg)
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server.bound)
    errors: list[str] = []
    try:
        first, second = context.new_page(), context.new_page()
        for tab in (first, second):
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" and "409" not in m.text else None)
        label_id = label_ids(store, "review")[0]
        for tab in (first, second):
            tab.goto(f"/items/{label_id}")
            tab.wait_for_load_state("networkidle")
        first.keyboard.press("a")
        first.wait_for_url(lambda url: f"/items/{label_id}" not in url)
        second.keyboard.press("r")
        second.wait_for_selector("#flash .flash.error")
        assert "already accepted" in second.inner_text("#flash") and f"/items/{label_id}" in second.url
        second.screenshot(path=screens / "conflict.png")
    finally:
        context.close()
        server.stop()
    assert label_id in label_ids(store, "accepted") and errors == []
