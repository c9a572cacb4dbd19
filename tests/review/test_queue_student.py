"""The review page and the student: disagreements first, badges on cards and items, the "student disagrees" filter."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.store import DatasetStore
from tests.review.conftest import label_ids

HTML = {"accept": "text/html"}


def card_ids(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'data-id="(\d+)"', html)]


def card(html: str, label_id: int) -> str:
    """The text of one queue card."""
    return html.split(f'data-id="{label_id}"', 1)[1].split("</article>", 1)[0]


@pytest.fixture
def scored(store: DatasetStore) -> tuple[int, int, int]:
    """The open parts get scores: one the student disagrees on (0.62), one found by the student only (0.9), and
    one it agrees with (0); the rest have none. Returns (disagreeing, student find, agreeing)."""
    disagree, found, agree = label_ids(store, "review")[:3]
    with store.manifest.transaction() as db:
        db.execute("UPDATE labels SET disagreement = 0.62 WHERE id = ?", (disagree,))
        db.execute("UPDATE labels SET disagreement = 0 WHERE id = ?", (agree,))
        db.execute(
            "UPDATE labels SET disagreement = 0.9, verdict_source = 'student', verdict_confidence = NULL, "
            "verdict_passed = NULL WHERE id = ?",
            (found,),
        )
    return disagree, found, agree


@pytest.fixture
def client(store: DatasetStore, cfg: Config) -> TestClient:
    return TestClient(create_app(cfg, store))


def test_queue_puts_disagreements_first_with_their_badges(client: TestClient, scored: tuple[int, int, int]) -> None:
    disagree, found, agree = scored
    page = client.get("/")
    ids = card_ids(page.text)
    assert ids[:2] == [found, disagree] and agree in ids[2:]
    first, second, plain = card(page.text, found), card(page.text, disagree), card(page.text, agree)
    assert '<span class="badge student"' in first and ">disagreement 0.90</span>" in first
    assert ">disagreement 0.62</span>" in second and "badge student" not in second
    assert "badge disagree" not in plain and "badge student" not in plain


def test_student_disagrees_filter_keeps_scores_above_zero(client: TestClient, scored: tuple[int, int, int]) -> None:
    disagree, found, _ = scored
    grid = client.get("/?disagrees=1", headers={"HX-Request": "true"})
    assert grid.status_code == 200 and card_ids(grid.text) == [found, disagree]
    assert "<b>2</b> items" in grid.text
    page = client.get("/?disagrees=1&stream=kitchen")
    assert card_ids(page.text) == [found, disagree] and 'name="disagrees" value="1" checked' in page.text
    assert 'name="disagrees" value="1" >' in client.get("/").text  # unchecked without it
    bad = client.get("/?disagrees=yes", headers=HTML)
    assert bad.status_code == 400 and "write disagrees=1" in bad.text


def test_item_page_shows_the_badges_and_walks_the_queue_order(
    client: TestClient, store: DatasetStore, scored: tuple[int, int, int]
) -> None:
    disagree, found, agree = scored
    ids = card_ids(client.get("/").text)
    page = client.get(f"/items/{found}")
    assert page.status_code == 200
    assert '<div class="badge student"' in page.text and "disagreement 0.90</div>" in page.text
    assert f'href="/items/{disagree}" data-key="ArrowRight"' in page.text and 'data-key="ArrowLeft"' not in page.text
    boundary = client.get(f"/items/{ids[2]}").text  # the first part without a disagreement
    assert f'href="/items/{disagree}" data-key="ArrowLeft"' in boundary
    assert f'href="/items/{ids[3]}" data-key="ArrowRight"' in boundary
    plain = client.get(f"/items/{agree}").text
    assert "badge disagree" not in plain and "badge student" not in plain
    filtered = client.get(f"/items/{disagree}?disagrees=1").text
    assert f'href="/items/{found}?disagrees=1" data-key="ArrowLeft"' in filtered
    assert 'data-key="ArrowRight"' not in filtered
