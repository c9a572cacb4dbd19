"""The dataset store: where frames go, what the files hold, and that manifest and files agree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import yaml

from streamlabel.frames import Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store import DatasetStore, atomic_write, frame_split
from streamlabel.store.check import check_store


@pytest.mark.parametrize(
    ("statuses", "split"),
    [
        ([], None),
        (["rejected"], "rejected"),
        (["accepted"], "dataset"),
        (["accepted", "rejected"], "dataset"),
        (["accepted", "review"], "review"),
        (["review", "rejected"], "review"),
        (["accepted", "pending"], "pending"),
    ],
)
def test_frame_split(statuses: list[str], split: str | None) -> None:
    assert frame_split(statuses) == split


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.txt"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def result(statuses: list[str], seq: int = 0) -> FrameResult:
    image = np.zeros((100, 200, 3), np.uint8)
    frame = Frame("cam", seq, seq * 0.5, datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC), image)
    anchors = sv.Detections(
        xyxy=np.array([[10, 10, 110, 90]], np.float32),
        confidence=np.array([0.9]),
        class_id=np.array([16]),
        data={"class_name": np.array(["dog"])},
    )
    n = len(statuses)
    square = np.array([[20, 20], [40, 20], [40, 50], [20, 50]], np.float32)
    polygons = np.empty(n, dtype=object)
    polygons[:] = [square + 30 * k for k in range(n)]
    verdicts = np.empty(n, dtype=object)
    verdicts[:] = [Verdict(s != "rejected", 0.9, {"a": s != "rejected"}, "r", "m", 0.1, "stated") for s in statuses]
    parts = sv.Detections(
        xyxy=np.array([[20 + 30 * k, 20 + 30 * k, 40 + 30 * k, 50 + 30 * k] for k in range(n)], np.float32).reshape(
            -1, 4
        ),
        confidence=np.full(n, 0.5),
        class_id=np.zeros(n, int),
        data={
            "anchor_index": np.zeros(n, int),
            "polygon": polygons,
            "status": np.array(statuses, dtype=object),
            "verdict": verdicts,
            "mask_score": np.full(n, 0.8),
        },
    )
    return FrameResult(frame, anchors, parts)


def new_store(root: Path) -> DatasetStore:
    store = DatasetStore(root, ["eye"])
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    return store


def test_write_dataset_frame_files_and_rows(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = store.write(result(["accepted", "rejected"]), "c")
    assert stored is not None and stored.split == "dataset" and stored.labels == 1
    assert stored.image == tmp_path / "images/cam/2026-11-22" / "cam_20261122T100000000Z_000000.jpg"
    (line,) = stored.label.read_text().splitlines()
    cls, poly = parse_yolo_line(line)
    assert cls == 0
    np.testing.assert_allclose(poly, [[0.1, 0.2], [0.2, 0.2], [0.2, 0.5], [0.1, 0.5]], atol=1e-6)
    rows = store.manifest.query("SELECT status, idx, verdict_passed FROM labels ORDER BY id")
    assert [(r["status"], r["idx"], r["verdict_passed"]) for r in rows] == [("accepted", 0, 1), ("rejected", -1, 0)]
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["names"] == {0: "eye"} and data["train"] == "images"
    store.close()
    assert check_store(tmp_path) == []


@pytest.mark.parametrize(("tracker_ids", "stored"), [(None, [None, None]), ([4, -1], [4, None])])
def test_track_id_is_null_without_a_confirmed_track(
    tmp_path: Path, tracker_ids: list[int] | None, stored: list[int | None]
) -> None:
    store = new_store(tmp_path)
    res = result(["accepted", "review"])
    if tracker_ids is not None:
        res.parts.tracker_id = np.asarray(tracker_ids)  # -1: the tracker has not confirmed that part yet
    store.write(res, "c")
    rows = store.manifest.query("SELECT track_id FROM labels ORDER BY id")
    assert [r["track_id"] for r in rows] == stored
    store.close()


def test_review_and_rejected_splits(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.write(result(["review"], 1), "c").split == "review"
    rejected = store.write(result(["rejected"], 2), "c")
    assert rejected.split == "rejected" and rejected.image is None
    assert store.write(result([], 3), "c") is None
    assert (tmp_path / "review/images/cam/2026-11-22").is_dir()
    assert not (tmp_path / "rejected").exists()
    store.close()
    assert check_store(tmp_path) == []


def test_check_store_finds_orphans_and_missing_files(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = store.write(result(["accepted"]), "c")
    store.close()
    stored.image.unlink()
    (tmp_path / "images/cam/2026-11-22/stray.jpg").write_bytes(b"x")
    problems = check_store(tmp_path)
    assert any("is missing" in p for p in problems)
    assert any("stray.jpg has no manifest row" in p for p in problems)


def test_each_kept_label_has_its_event_in_the_same_manifest(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    dataset = store.write(result(["accepted"], 1), "c")
    review = store.write(result(["review"], 2), "c")
    rejected = store.write(result(["rejected"], 3), "c")  # rejected events only with publish_rejected
    rows = store.manifest.query("SELECT id, kind, frame_id FROM outbox ORDER BY seq")
    assert [(r["kind"], r["frame_id"]) for r in rows] == [("label", dataset.frame_id), ("review", review.frame_id)]
    assert [r["id"] for r in rows] == [*dataset.event_ids, *review.event_ids] and rejected.event_ids == ()
    assert store.manifest.outbox_depth() == 2
    store.close()
    assert check_store(tmp_path) == []
