"""check_store covers ``clips/``: a clip row whose MP4 or sidecar is gone, and a file in ``clips/`` without a row."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np

from streamlabel.config import Config
from streamlabel.frames import Frame
from streamlabel.store.check import check_store
from streamlabel.store.clips import ClipWriter
from streamlabel.store.staging import CLIP_INTENT_FILE
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import T0, new_store


def write_one_clip(root: Path) -> str:
    store = new_store(root)
    frames = [
        Frame("cam", i, i * 0.5, T0 + timedelta(seconds=i * 0.5), np.full((48, 64, 3), 9 * i, np.uint8))
        for i in range(6)
    ]
    seg = TrackSegment("cam", 2, "dog", 0.0, 2.5, T0, T0 + timedelta(seconds=2.5), ())
    cfg = Config.model_validate({"tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    record = ClipWriter(store, cfg).write(seg, "rtsp://cam.local/live", frames)
    store.close()
    assert record is not None
    return record.clip_id


def test_a_whole_clip_is_clean_and_a_missing_file_is_named(tmp_path: Path) -> None:
    root = tmp_path / "store"
    clip_id = write_one_clip(root)
    assert check_store(root) == []
    (root / "clips" / "cam" / f"{clip_id}.mp4").unlink()
    assert check_store(root) == [f"clip {clip_id}: clips/cam/{clip_id}.mp4 is missing"]
    (root / "clips" / "cam" / f"{clip_id}.json").unlink()
    assert len(check_store(root)) == 2


def test_an_orphan_mp4_and_a_cut_short_clip_write_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_one_clip(root)
    orphan = root / "clips" / "cam" / "cam_20260101T000000000Z_t9.mp4"
    orphan.write_bytes(b"\0" * 64)
    (root / CLIP_INTENT_FILE).write_text('{"kind": "clip", "clip_id": "x", "files": []}')
    assert sorted(check_store(root)) == sorted(
        [
            "clips/cam/cam_20260101T000000000Z_t9.mp4 has no clips row",
            f"{CLIP_INTENT_FILE}: a write was cut short; opening the store removes its files",
        ]
    )


def test_a_pruned_clip_row_names_no_file(tmp_path: Path) -> None:
    root = tmp_path / "store"
    clip_id = write_one_clip(root)
    for suffix in (".mp4", ".json"):
        (root / "clips" / "cam" / f"{clip_id}{suffix}").unlink()
    store = new_store(root)
    with store.manifest.transaction() as db:
        db.execute("UPDATE clips SET path = NULL, sidecar = NULL, pruned = 'now' WHERE clip_id = ?", (clip_id,))
    store.close()
    assert check_store(root) == []
