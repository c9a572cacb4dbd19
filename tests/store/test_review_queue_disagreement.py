"""The review queue puts what the student disagrees on first (docs/student.md), unfiltered and filtered alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlabel.bench.review import fill_manifest
from streamlabel.store import DatasetStore
from streamlabel.store.reviews import QueueFilter, Reviews
from tests.store.synthetic import new_store

THRESHOLD = 0.55
# labels.disagreement by id % 10: NULL (no student), 0 (agree), 0.3, 0.9, and 1.0 for many (a weak student's ties).
SCORES = {0: None, 1: 0.0, 2: 0.3, 3: 0.9, 4: 1.0, 5: 1.0, 6: None, 7: 0.0, 8: 1.0, 9: None}
FULL_ORDER = (
    "max(coalesce(l.disagreement, 0), 0) DESC, abs(coalesce(l.verdict_confidence, 0) - ?), "
    "l.verdict_confidence IS NULL, l.id"
)


@pytest.fixture
def mixed(tmp_path: Path) -> DatasetStore:
    """400 parts of 4 streams with mixed scores, ties at the threshold, and student-only rows (no verdict)."""
    store = new_store(tmp_path / "s")
    fill_manifest(store, 400, seed=3)
    with store.manifest.transaction() as db:
        for rest, score in SCORES.items():
            db.execute("UPDATE labels SET disagreement = ? WHERE id % 10 = ?", (score, rest))
        db.execute("UPDATE labels SET verdict_confidence = 0.8 WHERE id % 37 = 0")  # ties at one confidence
        db.execute(  # the student's own finds: status review, no verdict, scored with its confidence
            "UPDATE labels SET status = 'review', verdict_source = 'student', verdict_confidence = NULL, "
            "verdict_passed = NULL, disagreement = 0.83 WHERE id % 23 = 0"
        )
    yield store
    store.close()


def full_sort(store: DatasetStore, where: QueueFilter) -> list[int]:
    """SQLite's own ORDER BY over every matching row: what the page-by-page scans must reproduce."""
    cond, params = where.where()
    rows = store.manifest.query(
        f"SELECT l.id FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE {cond} ORDER BY {FULL_ORDER}",
        (*params, THRESHOLD),
    )
    return [int(r[0]) for r in rows]


def scores(store: DatasetStore, ids: list[int]) -> list[float]:
    by_id = {int(r[0]): r[1] for r in store.manifest.query("SELECT id, disagreement FROM labels")}
    return [by_id[i] or 0.0 for i in ids]


@pytest.mark.parametrize("where", [QueueFilter(), QueueFilter(stream="cam1"), QueueFilter(min_confidence=0.2)])
def test_disagreement_comes_first_then_closeness_page_by_page(mixed: DatasetStore, where: QueueFilter) -> None:
    reviews = Reviews(mixed, THRESHOLD)
    full = full_sort(mixed, where)
    pages = [i.id for k in range(0, len(full), 48) for i in reviews.queue(where, 48, k)[0]]
    assert len(full) > 40 and pages == full
    ranked = scores(mixed, pages)
    assert ranked == sorted(ranked, reverse=True)  # 1.0, 0.9, 0.83 (student finds), 0.3, then NULL and 0 mixed
    assert {0.83, 0.3} <= set(ranked) or where.min_confidence  # a confidence filter drops the unjudged finds
    head = reviews.queue(where, 200)[0]
    ones = [i for i in head if i.disagreement == 1.0]  # inside one score: closest to the threshold first
    distances = [abs((i.verdict_confidence or 0) - THRESHOLD) for i in ones]
    assert distances == sorted(distances)


def test_student_finds_sit_among_the_disagreements_by_their_score(mixed: DatasetStore) -> None:
    reviews = Reviews(mixed, THRESHOLD)
    items, total = reviews.queue(QueueFilter(), 400)
    assert len(items) == total
    positions = [k for k, i in enumerate(items) if i.verdict_source == "student"]
    assert positions and items[positions[0] - 1].disagreement == 0.9 and items[positions[-1] + 1].disagreement == 0.3
    assert all(items[k].verdict_confidence is None for k in positions)


@pytest.mark.parametrize("where", [QueueFilter(), QueueFilter(stream="cam2")])
def test_prev_and_next_follow_the_order_across_every_boundary(mixed: DatasetStore, where: QueueFilter) -> None:
    reviews = Reviews(mixed, THRESHOLD)
    full = full_sort(mixed, where)
    ranked = scores(mixed, full)
    edges = [k for k in range(1, len(full)) if ranked[k] != ranked[k - 1]]  # last of a score and first of the next
    assert len(edges) >= 3
    for at in sorted({0, 1, len(full) - 1, *edges, *(k - 1 for k in edges), 57}):
        want = (full[at - 1] if at else None, full[at + 1] if at + 1 < len(full) else None)
        assert reviews.neighbours(where, full[at]) == want, (at, ranked[at])


def test_the_student_disagrees_filter_keeps_only_scores_above_zero(mixed: DatasetStore) -> None:
    reviews = Reviews(mixed, THRESHOLD)
    where = QueueFilter(disagrees=True)
    full = full_sort(mixed, where)
    items, total = reviews.queue(where, 500)
    assert [i.id for i in items] == full and total == len(full)
    assert min(scores(mixed, full)) > 0 and len(full) < len(full_sort(mixed, QueueFilter()))
    assert reviews.neighbours(where, full[-1]) == (full[-2], None)  # the last disagreement ends this queue
    agreeing = full_sort(mixed, QueueFilter())[-1]
    assert reviews.neighbours(where, agreeing) == (None, None)
    stream = reviews.queue(QueueFilter(disagrees=True, stream="cam3"), 500)[0]
    assert stream and all(i.disagreement > 0 and i.stream == "cam3" for i in stream)


def test_the_unfiltered_queue_reads_along_the_disagreement_index(mixed: DatasetStore) -> None:
    Reviews(mixed, THRESHOLD)
    plan = mixed.manifest.query(
        "EXPLAIN QUERY PLAN SELECT l.id FROM labels l WHERE l.status IN (?) AND l.disagreement > 0 "
        "ORDER BY l.disagreement DESC LIMIT 48",
        ("review",),
    )
    detail = " ".join(str(r["detail"]) for r in plan)
    assert "labels_status_disagreement" in detail and "TEMP B-TREE" not in detail
