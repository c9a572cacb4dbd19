"""Drawing a box around a part the pipeline missed: SAM2 (tiny random weights, the real code path) segments inside
it, the new part is added to the frame through the decision path, and undo takes it back."""

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


def headers(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]


def accepted_item(store: DatasetStore) -> tuple[int, dict]:
    label_id = label_ids(store, "accepted")[-1]  # the frame whose only part the pipeline accepted
    frame_id = store.manifest.query("SELECT frame_id FROM labels WHERE id = ?", (label_id,))[0][0]
    return label_id, store.manifest.frame(frame_id)


def test_a_box_gives_a_mask_that_add_labels_in_the_dataset_and_undo_removes(
    client: TestClient, store: DatasetStore
) -> None:
    label_id, frame = accepted_item(store)
    label_before = (store.root / frame["label"]).read_text()
    preview = client.post(f"/items/{label_id}/box", data={"box": "[0.05, 0.1, 0.3, 0.5]"}, headers=headers(client))
    assert preview.status_code == 200, preview.text
    polygon = preview.json()["polygon"]
    assert len(polygon) >= 3 and all(0 <= v <= 1 for pt in polygon for v in pt)
    added = client.post(f"/items/{label_id}/add", data={"polygon": json.dumps(polygon)}, headers=headers(client))
    assert added.status_code == 200, added.text
    new_id = added.json()["label_id"]
    assert added.json()["url"] == f"/items/{new_id}"
    lines = (store.root / frame["label"]).read_text().splitlines()
    assert len(lines) == len(label_before.splitlines()) + 1
    page = client.get(f"/items/{new_id}")
    assert "drawn by a person" in page.text and 'data-key="u"' in page.text
    assert client.post(f"/items/{new_id}/undo", headers=headers(client)).status_code == 200
    assert (store.root / frame["label"]).read_text() == label_before
    decisions = store.manifest.query("SELECT decision FROM reviews WHERE label_id = ? ORDER BY id", (new_id,))
    assert [r[0] for r in decisions] == ["add", "undo"]


def test_the_item_page_declares_the_box_key(client: TestClient, store: DatasetStore) -> None:
    page = client.get(f"/items/{label_ids(store, 'review')[0]}")
    assert 'data-key="b"' in page.text and "/static/box.js" in page.text
    assert client.get("/static/box.js").status_code == 200


@pytest.mark.parametrize(
    ("url", "field", "value", "text"),
    [
        ("box", "box", "[0.5, 0.1, 0.2, 0.5]", "left &lt; right"),
        ("box", "box", "[0.1, 0.1, 0.2]", "4 numbers"),
        ("box", "box", "nope", "expected JSON"),
        ("add", "polygon", "[[0.1, 0.1], [0.2, 0.2]]", "3 to 4096 points"),
        ("add", "polygon", "[[0.1, 0.1], [0.2, 0.2], [2, 0.2]]", "between 0 and 1"),
    ],
)
def test_bad_boxes_and_polygons_are_named(
    client: TestClient, store: DatasetStore, url: str, field: str, value: str, text: str
) -> None:
    answer = client.post(f"/items/{label_ids(store, 'review')[0]}/{url}", data={field: value}, headers=headers(client))
    assert answer.status_code == 400 and text in answer.text


def test_an_add_on_an_unknown_item_is_a_clear_404(client: TestClient) -> None:
    square = json.dumps([[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]])
    answer = client.post("/items/9999/add", data={"polygon": square}, headers=headers(client))
    assert answer.status_code == 404 and "item 9999 is not in the manifest" in answer.text


def test_draw_a_box_in_the_browser_then_undo(store: DatasetStore, cfg: Config, tmp_path: Path) -> None:
    """Press b, drag a box beside the part, see the mask, add it with Enter; on the new item, u undoes it.

    The predictor is scripted (tests/fixtures/ellipse_predictor.py: the tiny SAM2's arbitrary masks make an
    unreadable screenshot); the requests above run the tiny SAM2 itself.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium")
    from streamlabel.review import ReviewServer

    label_id, frame = accepted_item(store)
    label_before = (store.root / frame["label"]).read_text()
    image_before = (store.root / frame["image"]).read_bytes()
    server = ReviewServer(cfg, store, address="127.0.0.1:0", segmenter=EllipseSegmenter())
    server.start()
    screens = screens_dir(tmp_path)
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, base_url=server.bound)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"/items/{label_id}")
            page.wait_for_load_state("networkidle")
            page.keyboard.press("b")
            assert page.is_visible("#box-panel")
            img = page.locator("#frame img").bounding_box()
            assert img is not None
            x0, y0 = img["x"] + img["width"] * 0.06, img["y"] + img["height"] * 0.12
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x0 + img["width"] * 0.12, y0 + img["height"] * 0.2, steps=5)
            page.mouse.move(x0 + img["width"] * 0.22, y0 + img["height"] * 0.35, steps=5)
            page.mouse.up()
            page.wait_for_selector("svg .mask-fixed")
            page.wait_for_function("!document.querySelector('[data-box-accept]').disabled")
            page.screenshot(path=screens / "box.png")
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: f"/items/{label_id}" not in url)
            page.wait_for_load_state("networkidle")
            new_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
            assert "drawn by a person" in page.inner_text(".side").lower()
            assert len((store.root / frame["label"]).read_text().splitlines()) == 2
            page.screenshot(path=screens / "box-added.png")
            page.keyboard.press("u")
            page.wait_for_selector(".badge.big.rejected")
            browser.close()
    finally:
        server.stop()
    assert errors == [], f"browser console errors: {errors}"
    assert (store.root / frame["label"]).read_text() == label_before
    assert (store.root / frame["image"]).read_bytes() == image_before
    payloads = [json.loads(r[0]) for r in store.manifest.query("SELECT payload FROM outbox WHERE kind = 'reviewed'")]
    assert [(e["decision"], e["label_id"]) for e in payloads] == [("add", new_id), ("undo", new_id)]
