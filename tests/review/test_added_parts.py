"""A part the pipeline missed, added by a person (store/added_parts.py): the decision path, undo, the audit."""

from __future__ import annotations

import json

import pytest

from streamlabel.store import DatasetStore
from streamlabel.store import reviews as reviews_module
from streamlabel.store.audit import Audits
from streamlabel.store.check import check_store
from streamlabel.store.reviews import QueueFilter, ReviewConflict, ReviewError, Reviews, UnknownItem
from tests.review.conftest import label_ids

SQUARE = [[0.05, 0.1], [0.15, 0.1], [0.15, 0.3], [0.05, 0.3]]


def accepted_frame(store: DatasetStore) -> dict:
    """The frame whose only part the pipeline accepted (unpainted dataset copy)."""
    (label_id,) = label_ids(store, "accepted")[-1:]
    frame_id = store.manifest.query("SELECT frame_id FROM labels WHERE id = ?", (label_id,))[0][0]
    return store.manifest.frame(frame_id)


def reviewed(store: DatasetStore) -> list[dict]:
    rows = store.manifest.query("SELECT payload FROM outbox WHERE kind = 'reviewed' ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_an_added_part_is_labeled_in_the_dataset_and_undo_takes_it_back(store: DatasetStore, reviews: Reviews) -> None:
    frame = accepted_frame(store)
    image, label = (store.root / frame["image"]).read_bytes(), (store.root / frame["label"]).read_text()
    row = reviews.add(frame["frame_id"], SQUARE, "ana")
    added = reviews.item(row["label_id"])
    assert (added.status, added.verdict_source, row["previous_status"]) == ("accepted", "person", "missed")
    assert json.loads(added.xyxy) == [16.0, 24.0, 48.0, 72.0]  # the polygon's bounds on the 320x240 frame
    lines = (store.root / frame["label"]).read_text().splitlines()
    assert (
        lines[:-1] == label.splitlines()
        and lines[-1] == "0 0.050000 0.100000 0.150000 0.100000 0.150000 0.300000 0.050000 0.300000"
    )
    assert [(e["decision"], e["label_id"]) for e in reviewed(store)] == [("add", row["label_id"])]
    assert check_store(store.root) == []
    reviews.undo(row["label_id"], "ana")
    assert (store.root / frame["label"]).read_text() == label
    assert (store.root / frame["image"]).read_bytes() == image
    withdrawn = reviews.item(row["label_id"])
    assert (withdrawn.status, withdrawn.rejection) == ("rejected", "not_target")
    assert [e["decision"] for e in reviewed(store)] == ["add", "undo"] and check_store(store.root) == []


def test_a_double_submit_of_the_same_part_is_a_conflict(store: DatasetStore, reviews: Reviews) -> None:
    frame = accepted_frame(store)
    row = reviews.add(frame["frame_id"], SQUARE, "ana")
    with pytest.raises(ReviewConflict, match=f"already added \\(item {row['label_id']}\\)"):
        reviews.add(frame["frame_id"], SQUARE, "ana")
    assert len(store.manifest.labels_of(frame["frame_id"])) == 2


@pytest.mark.parametrize(
    ("frame_id", "polygon", "error", "text"),
    [
        ("no-such-frame", SQUARE, UnknownItem, "not in the manifest"),
        (None, SQUARE[:2], ReviewError, "3 or more points"),
    ],
)
def test_bad_adds_are_refused_and_leave_nothing(
    store: DatasetStore, reviews: Reviews, frame_id, polygon, error, text
) -> None:
    before = store.manifest.query("SELECT COUNT(*) FROM labels")[0][0]
    with pytest.raises(error, match=text):
        reviews.add(frame_id or accepted_frame(store)["frame_id"], polygon, "ana")
    assert store.manifest.query("SELECT COUNT(*) FROM labels")[0][0] == before


def test_an_add_whose_frame_files_are_gone_is_withdrawn_with_its_part(store: DatasetStore, reviews: Reviews) -> None:
    frame = accepted_frame(store)
    (store.root / frame["image"]).unlink()
    before = store.manifest.query("SELECT COUNT(*) FROM labels")[0][0]
    with pytest.raises(ReviewError, match="files are gone"):
        reviews.add(frame["frame_id"], SQUARE, "ana")
    assert store.manifest.query("SELECT COUNT(*) FROM labels")[0][0] == before
    assert store.manifest.query("SELECT COUNT(*) FROM reviews")[0][0] == 0


def test_a_crash_before_the_render_finishes_the_add_on_open(store: DatasetStore, reviews: Reviews, monkeypatch) -> None:
    frame = accepted_frame(store)

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "render_dataset_copy", crash)
    with pytest.raises(RuntimeError):
        reviews.add(frame["frame_id"], SQUARE, "ana")
    assert check_store(store.root) == [] and reviewed(store) == []
    monkeypatch.undo()
    Reviews(store)
    assert len((store.root / frame["label"]).read_text().splitlines()) == 2
    assert [e["decision"] for e in reviewed(store)] == ["add"] and check_store(store.root) == []
    assert reviews_module.Decision.ADD == "add"


def test_an_added_part_counts_as_missed_in_the_audit_and_a_withdrawn_one_not_at_all(
    store: DatasetStore, reviews: Reviews
) -> None:
    audits = Audits(store.manifest, store.root, 1.0)
    audits.select()  # every frame is an audit frame
    frame = accepted_frame(store)
    (pipeline_part,) = [r["id"] for r in store.manifest.labels_of(frame["frame_id"])]
    reviews.decide(pipeline_part, reviews_module.Decision.ACCEPT, "ana", expect="accepted")
    stratum = store.manifest.query("SELECT stratum FROM audits WHERE frame_id = ?", (frame["frame_id"],))[0][0]
    done = audits.progress()[stratum]["done"]
    row = reviews.add(frame["frame_id"], SQUARE, "ana")
    audit = {p["label_id"]: p for p in audits.outcomes()["audit"]}
    assert audit[row["label_id"]]["pipeline"] == "missed" and audit[row["label_id"]]["truth"] is True
    reviews.undo(row["label_id"], "ana")
    assert row["label_id"] not in {p["label_id"] for p in audits.outcomes()["audit"]}
    assert audits.progress()[stratum]["done"] == done >= 1  # the withdrawn part does not hold its frame open
    open_items, _ = reviews.queue(QueueFilter(statuses=("rejected",), audit=True), 50)
    assert row["label_id"] not in {i.id for i in open_items}


def test_an_add_on_a_frame_rejected_as_a_whole_is_refused(store: DatasetStore, reviews: Reviews) -> None:
    from tests.store.synthetic import CONFIG_HASH, make_result

    res = make_result("kitchen", 50, ["rejected"], size=(240, 320), rejections=["reject_frame"])
    store.write(res, CONFIG_HASH)
    with pytest.raises(ReviewError, match="rejected as a whole"):
        reviews.add(res.frame.frame_id, SQUARE, "ana")
    assert len(store.manifest.labels_of(res.frame.frame_id)) == 1
