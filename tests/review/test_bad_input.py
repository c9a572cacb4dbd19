"""Bad input on every route that takes an item: unknown ids, double submissions, two tabs, a store deleted
underneath. Each answers a clear message with a 4xx (never a 500) and the server goes on answering."""

from __future__ import annotations

import json
import shutil

import pytest
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.review.security import USER_COOKIE
from streamlabel.store import DatasetStore
from tests.review.conftest import label_ids

SQUARE = json.dumps([[0.05, 0.1], [0.15, 0.1], [0.15, 0.3], [0.05, 0.3]])


@pytest.fixture
def client(store: DatasetStore, cfg: Config) -> TestClient:
    cfg = cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update={"metrics_address": None})})
    return TestClient(create_app(cfg, store), raise_server_exceptions=False)


def csrf(client: TestClient, htmx: bool = False) -> dict[str, str]:
    token = {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]
    return token | ({"HX-Request": "true"} if htmx else {})


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        ("GET", "/items/9999", None),
        ("GET", "/items/9999/frame.jpg", None),
        ("GET", "/thumbs/9999.jpg", None),
        ("POST", "/items/9999/decide", {"decision": "accept", "expect": "review"}),
        ("POST", "/items/9999/undo", {}),
        ("POST", "/items/9999/segment", {"points": "[[0.5, 0.5, 1]]"}),
        ("POST", "/items/9999/box", {"box": "[0.1, 0.1, 0.3, 0.3]"}),
        ("POST", "/items/9999/add", {"polygon": SQUARE}),
    ],
)
def test_an_unknown_item_is_a_404_naming_it(client: TestClient, method: str, path: str, form: dict | None) -> None:
    answer = client.request(method, path, data=form, headers=csrf(client, htmx=method == "POST"))
    assert answer.status_code == 404, answer.text
    assert "item 9999 is not in the manifest" in answer.text
    if method == "POST":  # htmx shows it in the flash area
        assert answer.headers["HX-Retarget"] == "#flash"


def test_a_batch_with_an_unknown_id_applies_the_rest(client: TestClient, store: DatasetStore) -> None:
    first = label_ids(store, "review")[0]
    grid = client.post("/batch", data={"decision": "accept", "ids": [str(first), "9999"]}, headers=csrf(client))
    assert grid.status_code == 200 and "accept × 1; 1 not applied: item 9999 is not in the manifest" in grid.text
    assert first in label_ids(store, "accepted")


def test_double_submissions_are_conflicts_and_change_nothing_twice(client: TestClient, store: DatasetStore) -> None:
    label_id = label_ids(store, "review")[0]
    form = {"decision": "reject", "expect": "review"}
    assert client.post(f"/items/{label_id}/decide", data=form, headers=csrf(client)).status_code == 200
    assert client.post(f"/items/{label_id}/decide", data=form, headers=csrf(client)).status_code == 409
    assert client.post(f"/items/{label_id}/undo", headers=csrf(client)).status_code == 200
    again = client.post(f"/items/{label_id}/undo", headers=csrf(client, htmx=True))
    assert again.status_code == 409 and "has no decision to undo" in again.text
    accepted = label_ids(store, "accepted")[-1]
    assert client.post(f"/items/{accepted}/add", data={"polygon": SQUARE}, headers=csrf(client)).status_code == 200
    twice = client.post(f"/items/{accepted}/add", data={"polygon": SQUARE}, headers=csrf(client, htmx=True))
    assert twice.status_code == 409 and "already added" in twice.text
    decisions = store.manifest.query("SELECT decision FROM reviews ORDER BY id")
    assert [r[0] for r in decisions] == ["reject", "undo", "add"]


def test_two_tabs_the_second_decision_names_who_decided_first(
    store: DatasetStore, cfg: Config, client: TestClient
) -> None:
    label_id = label_ids(store, "review")[0]
    other_tab = TestClient(client.app, cookies={USER_COOKIE: "ben"})  # another tab, another reviewer
    form = {"decision": "accept", "expect": "review"}
    assert other_tab.post(f"/items/{label_id}/decide", data=form, headers=csrf(client)).status_code == 200
    late = client.post(f"/items/{label_id}/decide", data=form | {"decision": "reject"}, headers=csrf(client, True))
    assert late.status_code == 409
    assert "already accepted (was review on your page; changed by ben at" in late.text and "reload" in late.text
    assert label_id in label_ids(store, "accepted")


@pytest.mark.parametrize("page", ["/", "/?status=audit", "/live", "/calibration", "/report"])
def test_a_store_deleted_underneath_gives_clear_pages_not_a_crash(
    client: TestClient, store: DatasetStore, page: str
) -> None:
    label_id = label_ids(store, "review")[0]
    shutil.rmtree(store.root)
    answer = client.get(page)
    assert answer.status_code == 410 and "is gone (manifest.sqlite was deleted or moved)" in answer.text
    assert "<!doctype html>" in answer.text  # a page with the error, not a bare traceback
    image = client.get(f"/items/{label_id}/frame.jpg")
    assert image.status_code == 410 and "The store changed underneath the page" in image.text
    decided = client.post(f"/items/{label_id}/decide", data={"decision": "accept"}, headers=csrf(client, True))
    assert decided.status_code == 410 and decided.headers["HX-Retarget"] == "#flash"
    assert store.manifest.query("SELECT count(*) FROM reviews")[0][0] == 0  # nothing was decided
    assert client.get("/static/htmx.min.js").status_code == 200  # the server goes on answering
