"""The decision model: apply and undo in one transaction with the file moves, conflicts, crash recovery, the queue."""

from __future__ import annotations

import json

import pytest

import streamlabel.store.reviews as reviews_module
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.reviews import Decision, QueueFilter, ReviewConflict, ReviewError, Reviews, UnknownItem
from tests.review.conftest import fill, label_ids
from tests.store.synthetic import new_store


def reviewed_events(store: DatasetStore) -> list[dict]:
    rows = store.manifest.query("SELECT payload FROM outbox WHERE kind = 'reviewed' ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_accept_moves_a_review_frame_into_the_dataset(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[0]
    frame_id = reviews.item(label_id).frame_id
    row = reviews.decide(label_id, Decision.ACCEPT, "ana", expect="review")
    frame = store.manifest.frame(frame_id)
    assert frame is not None and frame["split"] == "dataset" and frame["hold"] is None
    assert frame["image"].startswith("images/") and (store.root / frame["image"]).is_file()
    assert not (store.root / "review/images/kitchen").exists() or not list(
        (store.root / "review").rglob(f"{frame_id}.*")
    )
    assert (store.root / frame["label"]).read_text().count("\n") == 1
    assert (row["decision"], row["status"], row["previous_status"], row["who"], row["applied"]) == (
        "accept",
        "accepted",
        "review",
        "ana",
        1,
    )
    [event] = reviewed_events(store)
    assert (event["label_id"], event["status"], event["who"], event["image"]) == (
        label_id,
        "accepted",
        "ana",
        frame["image"],
    )
    assert event["stream"] == "kitchen"
    assert check_store(store.root) == []


def test_undo_puts_the_item_back_and_records_both_rows(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[0]
    frame_id = reviews.item(label_id).frame_id
    first = reviews.decide(label_id, Decision.ACCEPT, "ana")
    undo = reviews.undo(label_id, "ben")
    assert reviews.item(label_id).status == "review"
    frame = store.manifest.frame(frame_id)
    assert frame is not None and frame["split"] == "review" and (store.root / frame["image"]).is_file()
    assert not list((store.root / "images").rglob(f"{frame_id}.jpg"))
    assert (undo["decision"], undo["status"], undo["previous_status"], undo["undoes"]) == (
        "undo",
        "review",
        "accepted",
        first["id"],
    )
    assert reviews.history(label_id)[1]["undone_by"] == undo["id"]
    assert [e["decision"] for e in reviewed_events(store)] == ["accept", "undo"]
    assert check_store(store.root) == []
    with pytest.raises(ReviewConflict, match="no decision to undo"):
        reviews.undo(label_id, "ben")


def test_reject_of_a_part_beside_an_accepted_one_paints_it_out(store: DatasetStore, reviews: Reviews) -> None:
    frame_id = store.manifest.query("SELECT frame_id FROM frames WHERE hold = 'review'")[0][0]
    before = store.manifest.frame(frame_id)
    waiting = next(r["id"] for r in store.manifest.labels_of(frame_id) if r["status"] == "review")
    reviews.decide(waiting, Decision.REJECT, "ana", expect="review")
    after = store.manifest.frame(frame_id)
    assert after is not None and before is not None
    assert after["hold"] is None and after["rev"] == before["rev"] + 1
    rejected = next(r for r in store.manifest.labels_of(frame_id) if r["id"] == waiting)
    assert (rejected["status"], rejected["rejection"]) == ("rejected", "poor_label")
    assert (store.root / after["label"]).read_text().count("\n") == 1  # only the accepted part
    assert check_store(store.root) == []


def test_not_target_is_recorded_as_such(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[-1]
    reviews.decide(label_id, Decision.NOT_TARGET, "ana")
    row = next(r for r in store.manifest.labels_of(reviews.item(label_id).frame_id) if r["id"] == label_id)
    assert (row["status"], row["rejection"]) == ("rejected", "not_target")


def test_second_decision_on_the_same_item_is_a_conflict_naming_who(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[0]
    reviews.decide(label_id, Decision.ACCEPT, "ana", expect="review")
    with pytest.raises(ReviewConflict, match=r"already accepted .*by ana"):
        reviews.decide(label_id, Decision.REJECT, "ben", expect="review")
    with pytest.raises(ReviewConflict, match="not waiting"):
        reviews.decide(label_id, Decision.REJECT, "ben")
    assert len(reviews.history(label_id)) == 1


def test_unknown_item(reviews: Reviews) -> None:
    with pytest.raises(UnknownItem, match="item 9999 is not in the manifest"):
        reviews.decide(9999, Decision.ACCEPT, "ana")
    with pytest.raises(UnknownItem):
        reviews.item(9999)


def test_undo_of_a_reject_whose_image_was_dropped_is_refused_cleanly(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[-1]  # a review-only frame: rejected, only its original is kept
    reviews.decide(label_id, Decision.REJECT, "ana")
    frame = store.manifest.frame(reviews.item(label_id).frame_id)
    assert frame["image"] is None and frame["original"] is not None
    with store.manifest.transaction() as db:  # as retention prunes it (tests/review/test_originals.py)
        db.execute("UPDATE frames SET original = NULL WHERE frame_id = ?", (frame["frame_id"],))
    (store.root / frame["original"]).unlink()
    with pytest.raises(ReviewError, match="files are gone"):
        reviews.undo(label_id, "ana")
    assert [h["decision"] for h in reviews.history(label_id)] == ["reject"]
    assert reviews.history(label_id)[0]["undone_by"] is None
    assert check_store(store.root) == []


def test_crash_before_the_render_rolls_forward_on_open(store: DatasetStore, reviews: Reviews, monkeypatch) -> None:
    label_id = label_ids(store, "review")[0]

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "render_dataset_copy", crash)
    with pytest.raises(RuntimeError):
        reviews.decide(label_id, Decision.ACCEPT, "ana")
    assert reviews.item(label_id).status == "review"
    assert reviews.history(label_id)[0]["applied"] == 0
    assert check_store(store.root) == [] and reviewed_events(store) == []
    monkeypatch.undo()
    reopened = Reviews(store)
    assert reopened.recovered == [reviews.history(label_id)[0]["id"]]
    assert reviews.item(label_id).status == "accepted"
    assert len(reviewed_events(store)) == 1 and check_store(store.root) == []


def test_crash_after_the_render_publishes_once_on_open(store: DatasetStore, reviews: Reviews, monkeypatch) -> None:
    label_id = label_ids(store, "review")[0]

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(reviews_module, "enqueue_event", crash)
    with pytest.raises(RuntimeError):
        reviews.decide(label_id, Decision.ACCEPT, "ana")
    assert reviews.item(label_id).status == "accepted" and reviewed_events(store) == []
    assert check_store(store.root) == []
    monkeypatch.undo()
    Reviews(store)
    assert [e["status"] for e in reviewed_events(store)] == ["accepted"]
    assert reviews.history(label_id)[0]["applied"] == 1


def test_queue_is_most_uncertain_first_and_filters(store: DatasetStore, reviews: Reviews) -> None:
    items, total = reviews.queue(QueueFilter(), 50)
    assert total == 5 and {i.status for i in items} == {"review", "pending"}
    gaps = [abs(i.verdict_confidence - 0.8) for i in items]
    assert gaps == sorted(gaps)
    page2, _ = reviews.queue(QueueFilter(), 2, 2)
    assert [i.id for i in page2] == [i.id for i in items[2:4]]
    assert reviews.queue(QueueFilter(statuses=("pending",)), 50)[1] == 1
    assert reviews.queue(QueueFilter(stream="garden"), 50)[1] == 0
    assert reviews.queue(QueueFilter(day="2026-11-22"), 50)[1] == 5
    assert reviews.queue(QueueFilter(day="2026-11-23"), 50)[1] == 0
    assert reviews.queue(QueueFilter(min_confidence=0.6, max_confidence=0.8), 50)[1] == 2
    failed, n = reviews.queue(QueueFilter(statuses=("rejected",), failed_check="part_open"), 50)
    assert n == 1 and failed[0].failed == ["part_open"]
    assert reviews.queue(QueueFilter(statuses=("rejected",), failed_check="part_visible"), 50)[1] == 0


def test_queue_neighbours_follow_its_order(store: DatasetStore, reviews: Reviews) -> None:
    items, _ = reviews.queue(QueueFilter(), 50)
    assert reviews.neighbours(QueueFilter(), items[0].id) == (None, items[1].id)
    assert reviews.neighbours(QueueFilter(), items[2].id) == (items[1].id, items[3].id)
    assert reviews.neighbours(QueueFilter(), label_ids(store, "accepted")[0]) == (None, None)


def test_track_lists_the_parts_around_in_time(tmp_path) -> None:
    store = new_store(tmp_path / "s")
    fill(store, frames=[["review"]] * 9)
    reviews = Reviews(store)
    middle = reviews.item(label_ids(store, "review")[4])
    around = reviews.track(middle, around=2)
    assert [t.seq for t in around] == [2, 3, 5, 6]
    store.close()


def test_fast_queue_order_and_neighbours_match_a_full_sort(tmp_path) -> None:
    """The merged index scans give exactly SQLite's full ORDER BY, page by page, and the same neighbours."""
    from streamlabel.bench.review import fill_manifest

    store = new_store(tmp_path / "s")
    fill_manifest(store, 400, seed=3)
    store.manifest.query("UPDATE labels SET verdict_confidence = 0.8 WHERE id % 37 = 0")  # ties at the threshold
    reviews = Reviews(store, 0.55)
    where = QueueFilter(failed_check=None)
    cond, params = where.where()
    full = [
        int(r[0])
        for r in store.manifest.query(
            f"SELECT l.id FROM labels l WHERE {cond} ORDER BY abs(coalesce(l.verdict_confidence, 0) - ?), "
            "l.verdict_confidence IS NULL, l.id",
            (*params, 0.55),
        )
    ]
    pages = [i.id for k in range(0, len(full), 48) for i in reviews.queue(where, 48, k)[0]]
    assert len(full) > 250 and pages == full
    for at in (0, 1, 17, 120, len(full) - 1):
        want = (full[at - 1] if at else None, full[at + 1] if at + 1 < len(full) else None)
        assert reviews.neighbours(where, full[at]) == want
        assert reviews._neighbours_sorted(where, full[at]) == want
    store.close()


def test_fix_replaces_the_mask_and_undo_restores_it(store: DatasetStore, reviews: Reviews) -> None:
    label_id = label_ids(store, "review")[0]
    before = next(r for r in store.manifest.labels_of(reviews.item(label_id).frame_id) if r["id"] == label_id)
    square = [[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.25, 0.5]]
    with pytest.raises(ReviewError, match="a fix needs a polygon"):
        reviews.decide(label_id, Decision.FIX, "ana")
    with pytest.raises(ReviewError, match="only a fix takes one"):
        reviews.decide(label_id, Decision.ACCEPT, "ana", polygon=square)
    row = reviews.decide(label_id, Decision.FIX, "ana", expect="review", polygon=square)
    item = reviews.item(label_id)
    assert (item.status, json.loads(item.polygon), json.loads(item.xyxy)) == ("accepted", square, [80, 60, 160, 120])
    assert (row["previous_polygon"], row["previous_xyxy"]) == (before["polygon"], before["xyxy"])
    frame = store.manifest.frame(item.frame_id)
    assert frame is not None
    line = (store.root / frame["label"]).read_text().split()
    assert [float(v) for v in line[1:]] == pytest.approx([v for pt in square for v in pt], abs=1e-4)
    assert check_store(store.root) == []
    reviews.undo(label_id, "ana")
    item = reviews.item(label_id)
    assert (item.status, item.polygon, item.xyxy) == ("review", before["polygon"], before["xyxy"])
    assert [e["decision"] for e in reviewed_events(store)] == ["fix", "undo"]
