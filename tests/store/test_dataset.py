"""The dataset store: where frames go, what the files hold, and that manifest and files agree."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store import DatasetStore, atomic_write, frame_split
from streamlabel.store.check import check_store
from streamlabel.store.layout import subset_of
from streamlabel.store.rows import encode_jpeg
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

DAY = "2026-11-22"


@pytest.mark.parametrize(
    ("statuses", "split"),
    [
        ([], None),
        (["rejected"], "rejected"),
        (["accepted"], "dataset"),
        (["accepted", "rejected"], "dataset"),
        (["accepted", "review"], "dataset"),  # the review part waits in review/, the accepted one is in the dataset
        (["review", "rejected"], "review"),
        (["accepted", "pending"], "dataset"),
        (["review", "pending"], "pending"),
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


def decoded(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.int16)


def test_write_dataset_frame_files_and_rows(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    res = make_result("cam", 0, ["accepted", "rejected"], rejections=["", "not_target"])
    stored = store.write(res, CONFIG_HASH)
    subset = subset_of("cam", DAY, 0.1)
    assert stored is not None and stored.split == "dataset" and stored.labels == 1 and stored.hold is None
    assert stored.image == tmp_path / "images" / subset / "cam" / DAY / f"{res.frame.frame_id}.jpg"
    assert stored.label == tmp_path / "labels" / subset / "cam" / DAY / f"{res.frame.frame_id}.txt"
    (line,) = stored.label.read_text().splitlines()
    cls, poly = parse_yolo_line(line)
    assert cls == 0
    np.testing.assert_allclose(poly * [128, 96], res.parts.data["polygon"][0], atol=0.01)
    rows = store.manifest.query("SELECT status, idx, hold_idx, verdict_passed, rejection FROM labels ORDER BY id")
    assert [tuple(r) for r in rows] == [("accepted", 0, -1, 1, ""), ("rejected", -1, -1, 0, "not_target")]
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["names"] == {0: "eye"} and (data["train"], data["val"]) == ("images/train", "images/val")
    store.close()
    assert check_store(tmp_path) == []


def test_parts_are_decided_one_by_one_with_ignore_regions(tmp_path: Path) -> None:
    """accepted: a line; review and poor_label: painted out of the dataset copy; not_target: left as it is."""
    store = DatasetStore(tmp_path, ["eye"], jpeg_quality=100, ignore_margin_px=3)
    store.manifest.record_run(CONFIG_HASH, {}, {})
    statuses = ["accepted", "review", "rejected", "rejected"]
    res = make_result(
        "cam", 0, statuses, rejections=["", "", "poor_label", "not_target"], size=(96, 512), part_width=0.03
    )
    stored = store.write(res, CONFIG_HASH)
    assert stored.split == "dataset" and stored.hold == "review" and stored.labels == 1
    original = decoded(stored.hold_image)  # the same frame through the same JPEG encoder, unpainted
    assert len(stored.label.read_text().splitlines()) == 1  # only the accepted part is labeled
    painted = decoded(stored.image)
    boxes = res.parts.xyxy.astype(int)
    for j in (1, 2):  # review and poor_label: the target without a good label, painted out
        x1, y1, x2, y2 = boxes[j]
        inside = np.abs(painted[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean()
        assert inside > 20, f"part {j} was not painted out ({inside:.1f})"
        assert painted[y1:y2, x1:x2].std(axis=(0, 1)).max() < 3  # one flat colour
    outside = np.ones(original.shape[:2], bool)
    for j in (1, 2):
        x1, y1, x2, y2 = boxes[j]
        outside[max(y1 - 3 - 16, 0) : y2 + 3 + 16, max(x1 - 3 - 16, 0) : x2 + 3 + 16] = False  # margin + JPEG blocks
    assert np.abs(painted - original)[outside].max() == 0  # away from the regions, JPEG blocks are the same
    x1, y1, x2, y2 = boxes[3]  # not_target stays background, unpainted
    assert np.abs(painted[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean() < 2
    # The review copy keeps the original pixels, byte for byte, with its own label file (accepted + review).
    assert stored.hold_image == tmp_path / "review" / "images" / "cam" / DAY / f"{res.frame.frame_id}.jpg"
    assert stored.hold_image.read_bytes() == encode_jpeg(res.frame.image, 100, "original")
    assert len(stored.hold_label.read_text().splitlines()) == 2
    rows = store.manifest.query("SELECT status, idx, hold_idx FROM labels ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("accepted", 0, 0),
        ("review", -1, 1),
        ("rejected", -1, -1),
        ("rejected", -1, -1),
    ]
    kinds = [r["kind"] for r in store.manifest.query("SELECT kind FROM outbox ORDER BY seq")]
    assert kinds == ["label", "review"]  # the dataset copy and the review copy each have their event
    store.close()
    assert check_store(tmp_path) == []


def test_a_frame_level_failure_keeps_the_frame_out_of_the_dataset(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    res = make_result("cam", 0, ["accepted", "rejected"], rejections=["", "reject_frame"])
    stored = store.write(res, CONFIG_HASH)
    assert stored.split == "rejected" and stored.image is None and stored.hold is None
    assert not list((tmp_path / "images").rglob("*.jpg")) and not (tmp_path / "review").exists()
    assert store.manifest.outbox_depth() == 0
    store.close()
    assert check_store(tmp_path) == []


def test_flags_rejections_and_check_probs_are_stored(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    res = make_result("cam", 0, ["accepted", "accepted"], flagged=[False, True])
    res.parts.data["verdict"][0].check_probs.update({"open": 0.93})
    stored = store.write(res, CONFIG_HASH)
    assert stored.labels == 1  # a flagged mask is never a label of the dataset copy
    rows = store.manifest.query("SELECT flagged, idx, verdict_check_probs FROM labels ORDER BY id")
    assert [(r["flagged"], r["idx"]) for r in rows] == [(0, 0), (1, -1)]
    assert json.loads(rows[0]["verdict_check_probs"]) == {"open": 0.93}
    store.close()


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE frames (frame_id TEXT PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL, pts REAL NOT NULL,
    time TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, split TEXT NOT NULL, image TEXT, label TEXT,
    config_hash TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE labels (id INTEGER PRIMARY KEY, frame_id TEXT NOT NULL, idx INTEGER NOT NULL, class_id INTEGER NOT NULL,
    class_name TEXT NOT NULL, status TEXT NOT NULL, xyxy TEXT NOT NULL, anchor_xyxy TEXT NOT NULL,
    anchor_class TEXT NOT NULL, score REAL, mask_score REAL, polygon TEXT NOT NULL, verdict_passed INTEGER,
    verdict_confidence REAL, verdict_source TEXT, verdict_checks TEXT, verdict_reason TEXT, verdict_model TEXT,
    verdict_raw TEXT, verdict_reused INTEGER, track_id INTEGER);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO frames VALUES ('old_1', 'cam', 3, 1.5, '2026-11-20T10:00:00+00:00', 128, 96, 'review', NULL, NULL, 'c',
    '2026-11-20T10:00:00+00:00');
INSERT INTO labels (frame_id, idx, class_id, class_name, status, xyxy, anchor_xyxy, anchor_class, polygon)
    VALUES ('old_1', -1, 0, 'eye', 'review', '[1, 1, 5, 5]', '[0, 0, 9, 9]', 'dog', '[]');
"""


def test_a_store_of_schema_1_opens_and_gains_the_new_columns(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    db.executescript(V1_SCHEMA)
    db.close()
    store = new_store(tmp_path)
    [old] = store.manifest.query("SELECT flagged, rejection, hold_idx, verdict_check_probs FROM labels")
    assert tuple(old) == (0, "", -1, None)
    assert store.manifest.query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0] == "2"
    assert store.write(make_result("cam", 0, ["accepted"], flagged=[False]), CONFIG_HASH).split == "dataset"
    store.close()


def test_a_camera_day_never_sits_in_two_folders(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path, ["eye"], jpeg_quality=50, val_fraction=0.3)
    store.manifest.record_run(CONFIG_HASH, {}, {})
    seq = 0
    for stream in ("kitchen", "porch", "yard"):
        for day in range(12):
            for hour in (0, 13, 23):  # the same UTC day, hours apart: one track segment or several
                when = T0.replace(hour=hour) + timedelta(days=day)
                store.write(make_result(stream, seq, ["accepted"], when=when), CONFIG_HASH)
                seq += 1
    folders: dict[tuple[str, str], set[str]] = {}
    for path in (tmp_path / "images").rglob("*.jpg"):
        subset, stream, day = path.relative_to(tmp_path / "images").parts[:3]
        folders.setdefault((stream, day), set()).add(subset)
        assert (tmp_path / "labels" / subset / stream / day / f"{path.stem}.txt").is_file()
    assert len(folders) == 36 and all(len(s) == 1 for s in folders.values())
    subsets = {next(iter(s)) for s in folders.values()}
    assert subsets == {"train", "val"}  # 36 camera-days at 0.3: both folders are used
    rows = store.manifest.query(
        "SELECT stream, substr(time, 1, 10) AS day, COUNT(DISTINCT subset) AS n FROM frames GROUP BY stream, day"
    )
    assert {r["n"] for r in rows} == {1}
    store.close()
    assert check_store(tmp_path) == []


def test_a_changed_val_fraction_moves_only_camera_days_not_stored_yet(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path, ["eye"], val_fraction=0.0)  # everything to train
    store.manifest.record_run(CONFIG_HASH, {}, {})
    store.write(make_result("cam", 0, ["accepted"]), CONFIG_HASH)
    store.close()
    store = DatasetStore(tmp_path, ["eye"], val_fraction=1.0)  # now everything new to val
    same_day = store.write(make_result("cam", 1, ["accepted"]), CONFIG_HASH)
    next_day = store.write(make_result("cam", 2, ["accepted"], when=T0 + timedelta(days=1)), CONFIG_HASH)
    assert same_day.image.relative_to(tmp_path).parts[:2] == ("images", "train")  # the camera-day stays whole
    assert next_day.image.relative_to(tmp_path).parts[:2] == ("images", "val")
    store.close()


def test_background_frames_are_stored_at_the_configured_rate(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path, ["eye"], background_fraction=0.1)
    store.manifest.record_run(CONFIG_HASH, {}, {})
    kept = [store.write(make_result("cam", seq, [], anchored=False), CONFIG_HASH) for seq in range(50)]
    kept += [store.write(make_result("porch", seq, [], anchored=False), CONFIG_HASH) for seq in range(9)]
    others = [store.write(make_result("cam", 100 + seq, [], anchored=True), CONFIG_HASH) for seq in range(20)] + [
        store.write(make_result("cam", 200 + seq, [], anchored=False, people=1), CONFIG_HASH) for seq in range(20)
    ]
    stored = [s for s in kept if s is not None]
    assert [s.frame_id[-2:] for s in stored] == ["09", "19", "29", "39", "49"]  # every 10th empty frame of cam
    assert all(s.background and s.split == "dataset" and s.label.read_bytes() == b"" for s in stored)
    assert others == [None] * 40  # a dog without parts, or a person: never a negative
    assert store.backgrounds.kept == {"cam": 5} and store.backgrounds.seen == {"cam": 50, "porch": 9}
    assert store.manifest.query("SELECT COUNT(*) FROM frames WHERE background = 1")[0][0] == 5
    store.close()
    assert check_store(tmp_path) == []


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file but the manifest's (its rows are compared as rows): bytes and modification time."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith("manifest.sqlite")]
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def test_a_frame_read_again_is_skipped_before_anything_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = new_store(tmp_path)
    first = [make_result("cam", seq, ["accepted", "review"]) for seq in range(3)]
    for res in first:
        store.write(res, CONFIG_HASH)
    before = snapshot(tmp_path)
    rows_before = [tuple(r) for r in store.manifest.query("SELECT * FROM labels ORDER BY id")]
    caplog.set_level(logging.INFO, logger="streamlabel.store.dataset")
    for seq in range(3):  # a restart re-reads the file; the config changed meanwhile (now rejected)
        assert store.write(make_result("cam", seq, ["rejected", "accepted"]), CONFIG_HASH) is None
    assert store.skipped == {"cam": 3}
    assert [tuple(r) for r in store.manifest.query("SELECT * FROM labels ORDER BY id")] == rows_before
    assert store.manifest.outbox_depth() == 6
    assert snapshot(tmp_path) == before
    assert len([r for r in caplog.records if "already in the manifest" in r.getMessage()]) == 1  # one per stream
    store.close()


def test_last_frame_is_the_newest_stored_frame_of_the_stream(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.last_frame("cam") is None
    for seq in (0, 1, 5):
        store.write(make_result("cam", seq, ["accepted"]), CONFIG_HASH)
    store.write(make_result("porch", 9, ["accepted"]), CONFIG_HASH)
    store.write(make_result("cam", 6, []), CONFIG_HASH)  # no part: not stored, not the last stored frame
    assert store.last_frame("cam") == (5, 2.5) and store.last_frame("porch") == (9, 4.5)
    store.close()


@pytest.mark.parametrize(("track_ids", "stored"), [(None, [None, None]), ([4, -1], [4, None])])
def test_track_id_is_null_without_a_confirmed_track(
    tmp_path: Path, track_ids: list[int] | None, stored: list[int | None]
) -> None:
    store = new_store(tmp_path)
    store.write(make_result("cam", 0, ["accepted", "review"], track_ids=track_ids), CONFIG_HASH)  # -1: unconfirmed
    assert [r["track_id"] for r in store.manifest.query("SELECT track_id FROM labels ORDER BY id")] == stored
    store.close()


def test_review_and_rejected_frames(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    review = store.write(make_result("cam", 1, ["review"]), CONFIG_HASH)
    assert review.split == "review" and review.hold is None
    assert review.image == tmp_path / "review" / "images" / "cam" / DAY / f"{review.frame_id}.jpg"
    rejected = store.write(make_result("cam", 2, ["rejected"]), CONFIG_HASH)
    assert rejected.split == "rejected" and rejected.image is None
    assert store.write(make_result("cam", 3, []), CONFIG_HASH) is None  # an anchor without parts: nothing
    assert not (tmp_path / "rejected").exists()
    store.close()
    assert check_store(tmp_path) == []


def test_check_store_finds_orphans_and_missing_files(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = store.write(make_result("cam", 0, ["accepted"]), CONFIG_HASH)
    store.close()
    stored.image.unlink()
    (stored.label.parent / "stray.jpg").write_bytes(b"x")
    problems = check_store(tmp_path)
    assert any("is missing" in p for p in problems)
    assert any("stray.jpg has no manifest row" in p for p in problems)


def test_each_kept_label_has_its_event_in_the_same_manifest(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    dataset = store.write(make_result("cam", 1, ["accepted"]), CONFIG_HASH)
    review = store.write(make_result("cam", 2, ["review"]), CONFIG_HASH)
    rejected = store.write(make_result("cam", 3, ["rejected"]), CONFIG_HASH)  # rejected events: publish_rejected
    rows = store.manifest.query("SELECT id, kind, frame_id FROM outbox ORDER BY seq")
    assert [(r["kind"], r["frame_id"]) for r in rows] == [("label", dataset.frame_id), ("review", review.frame_id)]
    assert [r["id"] for r in rows] == [*dataset.event_ids, *review.event_ids] and rejected.event_ids == ()
    store.close()
    assert check_store(tmp_path) == []
