"""Fixing a mask with clicks: a tiny random-weight SAM2 (real code path) gives the preview, ``fix`` applies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.review.refine import refiner_factory
from streamlabel.store import DatasetStore
from tests.fixtures.ellipse_predictor import EllipseSegmenter
from tests.review.conftest import ARGS, CHROMIUM, label_ids, screens_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def client(store: DatasetStore, sam_cfg: Config) -> TestClient:
    return TestClient(create_app(sam_cfg, store, refiner=refiner_factory(sam_cfg)))


def test_two_clicks_give_a_mask_that_a_fix_applies(client: TestClient, store: DatasetStore) -> None:
    headers = {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]
    label_id = label_ids(store, "review")[0]
    points = json.dumps([[0.5, 0.5, 1], [0.05, 0.05, 0]])
    preview = client.post(f"/items/{label_id}/segment", data={"points": points}, headers=headers)
    assert preview.status_code == 200, preview.text
    polygon = preview.json()["polygon"]
    assert len(polygon) >= 3 and all(0 <= v <= 1 for pt in polygon for v in pt)
    form = {"decision": "fix", "expect": "review", "polygon": json.dumps(polygon)}
    assert client.post(f"/items/{label_id}/decide", data=form, headers=headers).status_code == 200
    item = client.app.state.reviews.item(label_id)  # type: ignore[attr-defined]
    assert item.status == "accepted" and json.loads(item.polygon) == polygon
    assert client.app.state.reviews.history(label_id)[0]["decision"] == "fix"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("points", "status", "text"),
    [
        ("[[0.5, 0.5, 0]]", 422, "positive point"),
        ("[[2, 0.5, 1]]", 400, "between 0 and 1"),
        ("not json", 400, "expected JSON"),
    ],
)
def test_bad_clicks_are_named(client: TestClient, store: DatasetStore, points: str, status: int, text: str) -> None:
    headers = {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]
    answer = client.post(f"/items/{label_ids(store, 'review')[0]}/segment", data={"points": points}, headers=headers)
    assert answer.status_code == status and text in answer.text


def test_the_daemon_shares_its_segmenter_model_not_its_predictor(sam_cfg: Config) -> None:
    from streamlabel.stages.base import Runtime
    from streamlabel.stages.segment import Sam2Segmenter

    segmenter = Sam2Segmenter(sam_cfg.models.segment, sam_cfg.target, Runtime.resolve("cpu", "auto"))
    get = refiner_factory(sam_cfg, segmenter)
    refiner = get()
    assert get() is refiner  # built once
    assert refiner._predictor is not segmenter._predictor
    assert refiner._predictor.model is segmenter._predictor.model


def test_fix_in_the_browser_with_two_clicks(store: DatasetStore, cfg: Config, tmp_path: Path) -> None:
    """Press f, click on the part and (with Shift) beside it, see the mask, accept it with Enter.

    The predictor is scripted (tests/fixtures/ellipse_predictor.py: the tiny SAM2's arbitrary masks make an
    unreadable screenshot); the requests above run the tiny SAM2 itself.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium")
    from streamlabel.review import ReviewServer

    server = ReviewServer(cfg, store, address="127.0.0.1:0", segmenter=EllipseSegmenter())
    server.start()
    label_id = label_ids(store, "review")[0]
    x1, y1, x2, y2 = json.loads(store.manifest.query("SELECT xyxy FROM labels WHERE id = ?", (label_id,))[0][0])
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, base_url=server.bound)
            page.goto(f"/items/{label_id}")
            page.wait_for_load_state("networkidle")
            page.keyboard.press("f")
            box = page.locator("#frame img").bounding_box()
            assert box is not None
            scale = min(box["width"] / 320, box["height"] / 240)  # the 320 x 240 frame is drawn "contain"
            left, top = box["x"] + (box["width"] - 320 * scale) / 2, box["y"] + (box["height"] - 240 * scale) / 2
            on_part = (left + (x1 + x2) / 2 * scale, top + (y1 + y2) / 2 * scale)
            page.mouse.click(*on_part)
            page.wait_for_selector("svg .mask-fixed")
            page.keyboard.down("Shift")
            page.mouse.click(on_part[0] + 150, on_part[1] - 120)  # off the part
            page.keyboard.up("Shift")
            page.wait_for_function("document.querySelectorAll('svg .point-neg').length === 1")
            page.wait_for_function("!document.querySelector('[data-fix-accept]').disabled")
            page.screenshot(path=screens_dir(tmp_path) / "fix.png")
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: f"/items/{label_id}" not in url)
            browser.close()
    finally:
        server.stop()
    history = store.manifest.query("SELECT decision, polygon FROM reviews WHERE label_id = ?", (label_id,))
    assert [r["decision"] for r in history] == ["fix"] and len(json.loads(history[0]["polygon"])) >= 3
