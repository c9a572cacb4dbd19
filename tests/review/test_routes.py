"""Routes with Starlette's test client: the queue, the item, decisions, CSRF, the token, and bad input."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError
from starlette.testclient import TestClient

from streamlabel.config import Config, ReviewConfig
from streamlabel.review import ReviewConfigError, ReviewServer, create_app, review_server
from streamlabel.store import DatasetStore
from streamlabel.store.reviews import QueueFilter
from tests.review.conftest import fill, label_ids

HTML = {"accept": "text/html"}


def card_ids(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'data-id="(\d+)"', html)]


@pytest.fixture
def client(store: DatasetStore, cfg: Config) -> TestClient:
    return TestClient(create_app(cfg, store))


def csrf(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]


def test_queue_lists_open_items_most_uncertain_first(client: TestClient, store: DatasetStore) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text
    ids = card_ids(page.text)
    assert sorted(ids) == sorted(label_ids(store, "review") + label_ids(store, "pending"))
    assert ids == [i.id for i in client.app.state.reviews.queue(QueueFilter(), 50)[0]]  # type: ignore[attr-defined]
    assert 'hx-headers=\'{"X-CSRF-Token": "' in page.text and "/static/htmx.min.js" in page.text


def test_htmx_request_gets_only_the_grid_and_filters_apply(client: TestClient, store: DatasetStore) -> None:
    grid = client.get("/?status=pending", headers={"HX-Request": "true"})
    assert grid.status_code == 200 and "<html" not in grid.text and grid.text.lstrip().startswith('<section id="grid"')
    assert card_ids(grid.text) == label_ids(store, "pending")
    rejected = client.get("/?status=rejected&check=part_open")
    assert card_ids(rejected.text) == label_ids(store, "rejected")
    assert card_ids(client.get("/?stream=garden").text) == []


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/?status=done", 400, "choose one of open, review"),
        ("/?day=22-11-2026", 400, "YYYY-MM-DD"),
        ("/?min=2", 400, "from 0 to 1"),
        ("/?page=0", 400, "page 0 is below 1"),
        ("/items/abc", 400, "not a whole number"),
        ("/items/9999", 404, "item 9999 is not in the manifest"),
        ("/thumbs/9999.jpg", 404, "item 9999"),
    ],
)
def test_bad_input_is_named(client: TestClient, url: str, status: int, text: str) -> None:
    answer = client.get(url, headers=HTML)
    assert answer.status_code == status and text in answer.text


def test_item_page_shows_frame_overlay_checks_and_track(client: TestClient, store: DatasetStore) -> None:
    label_id = label_ids(store, "review")[0]
    page = client.get(f"/items/{label_id}")
    assert page.status_code == 200
    assert f'src="/items/{label_id}/frame.jpg"' in page.text and "<polygon" in page.text
    assert "part_visible" in page.text and "Track 1" in page.text and 'data-key="a"' in page.text
    frame = client.get(f"/items/{label_id}/frame.jpg")
    thumb = client.get(f"/thumbs/{label_id}.jpg")
    assert frame.content[:2] == b"\xff\xd8" and thumb.content[:2] == b"\xff\xd8"
    assert thumb.content == client.get(f"/thumbs/{label_id}.jpg").content  # cached, hidden from check_store
    assert all(p.name.startswith(".") for p in (store.root / ".review-cache").iterdir())


def test_decide_needs_csrf_and_a_double_submit_is_a_conflict(client: TestClient, store: DatasetStore) -> None:
    label_id = label_ids(store, "review")[0]
    form = {"decision": "accept", "expect": "review"}
    assert client.post(f"/items/{label_id}/decide", data=form).status_code == 403
    assert client.post(f"/items/{label_id}/decide", data=form, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert label_id in label_ids(store, "review")
    done = client.post(f"/items/{label_id}/decide", data=form, headers=csrf(client))
    assert done.status_code == 200 and done.text == "" and label_id in label_ids(store, "accepted")
    again = client.post(f"/items/{label_id}/decide", data=form, headers={**csrf(client), "HX-Request": "true"})
    assert again.status_code == 409 and "already accepted" in again.text
    assert again.headers["HX-Retarget"] == "#flash"
    assert label_id not in card_ids(client.get("/").text)


def test_decide_from_the_item_page_redirects_to_the_next(client: TestClient, store: DatasetStore) -> None:
    label_id = label_ids(store, "review")[0]
    form = {"decision": "reject", "expect": "review", "then": "/items/2"}
    answer = client.post(f"/items/{label_id}/decide", data=form, headers=csrf(client))
    assert answer.headers["HX-Redirect"] == "/items/2"
    bad = {"decision": "maybe"}
    assert client.post(f"/items/{label_id}/decide", data=bad, headers=csrf(client)).status_code == 400


def test_batch_and_undo_last(client: TestClient, store: DatasetStore) -> None:
    ids = label_ids(store, "review")[:2]
    grid = client.post("/batch", data={"decision": "accept", "ids": [str(i) for i in ids]}, headers=csrf(client))
    assert grid.status_code == 200 and "accept × 2" in grid.text
    assert set(ids) <= set(label_ids(store, "accepted"))
    undone = client.post("/undo-last", headers=csrf(client))
    assert undone.headers["HX-Refresh"] == "true"
    assert ids[1] in label_ids(store, "review") and ids[0] in label_ids(store, "accepted")


def test_store_deleted_underneath_answers_410(client: TestClient, store: DatasetStore) -> None:
    label_id = label_ids(store, "review")[0]
    for sub in ("review", "images", "pending"):
        shutil.rmtree(store.root / sub, ignore_errors=True)
    answer = client.get(f"/items/{label_id}/frame.jpg", headers=HTML)
    assert answer.status_code == 410 and "no unpainted copy" in answer.text
    assert client.get(f"/thumbs/{label_id}.jpg").status_code == 410
    decided = client.post(f"/items/{label_id}/decide", data={"decision": "accept"}, headers=csrf(client))
    assert decided.status_code == 409 and label_id in label_ids(store, "review")


def test_static_files_are_vendored(client: TestClient) -> None:
    htmx = client.get("/static/htmx.min.js")
    keymap = client.get("/static/keymap.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text
    assert keymap.status_code == 200 and "eval(" not in keymap.text and "data-key" in keymap.text


@pytest.fixture
def locked(store: DatasetStore) -> TestClient:
    cfg = Config(review=ReviewConfig(address="0.0.0.0:9311", token=SecretStr("s3cret-token")))
    return TestClient(create_app(cfg, store))


def test_a_token_is_required_when_set(locked: TestClient, store: DatasetStore) -> None:
    assert locked.get("/").status_code == 401
    assert locked.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    redirect = locked.get("/items/1", headers=HTML, follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == "/login?next=/items/1"
    page = locked.get("/", headers={"Authorization": "Bearer s3cret-token"})
    assert page.status_code == 200 and "s3cret-token" not in page.text
    label_id = label_ids(store, "review")[0]
    bearer = locked.post(
        f"/items/{label_id}/decide", data={"decision": "accept"}, headers={"Authorization": "Bearer s3cret-token"}
    )
    assert bearer.status_code == 200  # not a browser session: no CSRF token needed


def test_login_sets_a_session_cookie_that_is_not_the_token(locked: TestClient, store: DatasetStore) -> None:
    form = {"csrf_token": locked.app.state.guard.csrf_token, "next": "/", "name": "ana"}  # type: ignore[attr-defined]
    assert locked.post("/login", data={**form, "token": "nope"}).status_code == 401
    assert locked.post("/login", data={**form, "csrf_token": "x", "token": "s3cret-token"}).status_code == 403
    ok = locked.post("/login", data={**form, "token": "s3cret-token"}, follow_redirects=False)
    assert ok.status_code == 303
    assert "s3cret-token" not in ok.headers["set-cookie"]
    assert locked.get("/").status_code == 200
    label_id = label_ids(store, "review")[0]
    assert locked.post(f"/items/{label_id}/decide", data={"decision": "accept"}).status_code == 403
    assert (
        locked.post(f"/items/{label_id}/decide", data={"decision": "accept"}, headers=csrf(locked)).status_code == 200
    )
    assert locked.app.state.reviews.history(label_id)[0]["who"] == "ana"  # type: ignore[attr-defined]


def test_config_refuses_an_open_address_without_token(store: DatasetStore) -> None:
    with pytest.raises(ValidationError, match=r"not loopback and review\.token is unset"):
        ReviewConfig(address="0.0.0.0:9311")
    with pytest.raises(ReviewConfigError, match=r"not loopback and review\.token is unset"):
        ReviewServer(Config(), store, address="0.0.0.0:0")
    with pytest.raises(ReviewConfigError, match=r"review\.address is null"):
        ReviewServer(Config(review=ReviewConfig(address=None)), store)
    assert review_server(Config(review=ReviewConfig(address=None)), store) is None
    with pytest.raises(ValidationError, match="HOST:PORT"):
        ReviewConfig(address="9311")
    with pytest.raises(ValidationError, match="audit_fraction"):
        ReviewConfig(audit_fraction=1.5)


def test_a_busy_port_stops_the_command_but_not_the_daemon(store: DatasetStore, cfg: Config) -> None:
    first = ReviewServer(cfg, store, address="127.0.0.1:0")
    first.start()
    try:
        taken = first.bound.removeprefix("http://")
        with pytest.raises(RuntimeError, match=f"could not listen on {taken}"):
            ReviewServer(cfg, store, address=taken).start()
        daemon_page = ReviewServer(cfg, store, address=taken, required=False)
        daemon_page.start()  # logs the error; the daemon labels on
        assert daemon_page.bound == "not started"
    finally:
        first.stop()


def test_live_view_shows_each_streams_newest_frame_and_last_hour(client: TestClient, store: DatasetStore) -> None:
    fill(store, "garden", [["review"], ["accepted"], ["rejected"]], start=datetime.now(UTC) - timedelta(minutes=5))
    page = client.get("/live")
    assert page.status_code == 200
    panels = re.findall(r'<article class="panel" data-stream="\w+">(.*?)</article>', page.text, re.S)
    assert [re.search(r"<b>(\w+)</b>", p).group(1) for p in panels] == ["garden", "kitchen"]  # type: ignore[union-attr]
    garden, kitchen = panels
    assert "<b>3</b> frames stored" in garden and "1 accepted" in garden and "1 review" in garden
    assert "<b>0</b> frames stored" in kitchen and "/frame.jpg" in kitchen  # old frames: none in the last hour
    assert "min ago" in garden
    grid = client.get("/live", headers={"HX-Request": "true"})
    assert grid.text.lstrip().startswith('<section id="streams" hx-get="/live" hx-trigger="every 5s"')
