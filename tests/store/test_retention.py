"""Retention: oldest review/rejected first, then clips, then delivered dataset frames; never undelivered or pending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.store.check import check_store
from streamlabel.store.clips import ClipWriter
from streamlabel.store.retention import BYTES_PER_GB, prune, store_bytes
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

# (seq, statuses, hours after T0): written in this order; a frame's time decides its age.
FRAMES = [
    (0, ["accepted"], 0),  # dataset, delivered
    (1, ["review"], 1),  # review, delivered
    (2, ["rejected"], 2),  # rejected (kept), no event
    (3, ["accepted"], 3),  # dataset, undelivered
    (4, ["pending"], 4),  # pending: never pruned
    (5, ["review"], 5),  # review, undelivered
    (6, ["accepted"], 6),  # dataset, delivered
]
UNDELIVERED = {3, 5}


def cfg(max_gb: float | None = None, max_age_days: float | None = None) -> Config:
    return Config.model_validate({"store": {"max_gb": max_gb, "max_age_days": max_age_days}})


@pytest.fixture
def store(tmp_path: Path):
    store = new_store(tmp_path / "store", keep_rejected=True)
    ids = {}
    for seq, statuses, hours in FRAMES:
        res = make_result("cam", seq, statuses, when=T0 + timedelta(hours=hours))
        store.write(res, CONFIG_HASH)
        ids[seq] = res.frame.frame_id
    frames = [make_result("cam", 100 + k, [], when=T0 + timedelta(hours=0.5, seconds=k)).frame for k in range(4)]
    seg = TrackSegment("cam", 1, "dog", frames[0].pts, frames[-1].pts, frames[0].time, frames[-1].time, ())
    ClipWriter(store, Config()).write(seg, None, frames)
    with store.manifest.transaction() as db:
        db.execute("UPDATE outbox SET delivered = '2026-11-22T12:00:00+00:00'")
        for seq in UNDELIVERED:
            db.execute("UPDATE outbox SET delivered = NULL WHERE frame_id = ?", (ids[seq],))
    store.ids = ids
    yield store
    store.close()


def present(store) -> set[int]:
    """Sequence numbers of the frames whose image is still in the store."""
    return {seq for seq, fid in store.ids.items() if (store.root / _image(store, fid)).is_file()}


def _image(store, frame_id: str) -> str:
    row = store.manifest.query("SELECT image FROM frames WHERE frame_id = ?", (frame_id,))[0]
    (p,) = store.manifest.query("SELECT files FROM pruned WHERE ref = ?", (frame_id,)) or [None]
    return row["image"] or (p["files"].splitlines()[0] if p else "missing")


def frame_bytes(store, seq: int) -> int:
    row = store.manifest.query("SELECT image, label FROM frames WHERE frame_id = ?", (store.ids[seq],))[0]
    return sum((store.root / row[k]).stat().st_size for k in ("image", "label"))


def test_no_limits_prunes_nothing(store) -> None:
    report = prune(store, cfg())
    assert report.freed == 0 and present(store) == set(range(7))


def test_size_limit_takes_the_oldest_review_or_rejected_frame_first(store) -> None:
    prune(store, cfg())  # creates the pruned table: the manifest's size settles
    limit = store_bytes(store.root) - frame_bytes(store, 1) // 2  # half a review frame too big
    report = prune(store, cfg(max_gb=limit / BYTES_PER_GB))
    assert report.frames == {"review": 1} and report.clips == 0
    assert present(store) == set(range(7)) - {1}
    (row,) = store.manifest.query("SELECT image, label, split FROM frames WHERE frame_id = ?", (store.ids[1],))
    assert (row["image"], row["label"], row["split"]) == (None, None, "review")  # rows stay, files go
    assert store.manifest.query("SELECT COUNT(*) FROM labels WHERE frame_id = ?", (store.ids[1],))[0][0] == 1
    assert check_store(store.root) == []


def test_tiny_limit_keeps_only_pending_and_undelivered(store) -> None:
    report = prune(store, cfg(max_gb=1e-9))
    assert report.frames == {"review": 1, "rejected": 1, "dataset": 2} and report.clips == 1
    assert present(store) == {3, 4, 5}
    assert report.over_limit and report.freed > 0
    assert not list((store.root / "clips").rglob("*.mp4"))
    (clip,) = store.manifest.query("SELECT path, pruned FROM clips")
    assert clip["path"] is None and clip["pruned"] is not None
    assert check_store(store.root) == []
    # Once delivered, the rest of the dataset may go; pending still stays.
    with store.manifest.transaction() as db:
        db.execute("UPDATE outbox SET delivered = '2026-11-22T13:00:00+00:00'")
    prune(store, cfg(max_gb=1e-9))
    assert present(store) == {4}


def test_clip_with_undelivered_event_stays(store) -> None:
    with store.manifest.transaction() as db:
        db.execute("UPDATE outbox SET delivered = NULL WHERE kind = 'clip'")
    assert prune(store, cfg(max_gb=1e-9)).clips == 0
    assert len(list((store.root / "clips").rglob("*.mp4"))) == 1


def test_age_limit(store) -> None:
    now = T0 + timedelta(days=1, hours=3, minutes=30)  # frames before T0 + 3.5 h are older than a day
    report = prune(store, cfg(max_age_days=1), now=now)
    # seq 0 (dataset, delivered), 1 (review), 2 (rejected) and the clip (0.5 h) are old; 3 is old but undelivered.
    assert report.frames == {"dataset": 1, "review": 1, "rejected": 1} and report.clips == 1
    assert present(store) == {3, 4, 5, 6}
    assert check_store(store.root) == []


def test_interrupted_prune_is_finished_by_the_next(store) -> None:
    prune(store, cfg())
    prune(store, cfg(max_gb=(store_bytes(store.root) - frame_bytes(store, 1) // 2) / BYTES_PER_GB))
    (row,) = store.manifest.query("SELECT id, files FROM pruned")
    leftover = store.root / row["files"].splitlines()[0]
    leftover.write_bytes(b"left by a crash")  # the manifest was updated, the unlink never happened
    with store.manifest.transaction() as db:
        db.execute("UPDATE pruned SET done = 0")
    assert check_store(store.root) != []
    prune(store, cfg())
    assert not leftover.exists() and check_store(store.root) == []


def test_cli_prune(store, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streamlabel.cli import app

    cfg_file = tmp_path / "cfg.yml"
    cfg_file.write_text(f"store:\n  path: {store.root}\n  max_gb: 0.000000001\n")
    res = CliRunner().invoke(app, ["prune", "-c", str(cfg_file)])
    assert res.exit_code == 0, res.output
    assert "pruned 2 dataset, 1 rejected, 1 review frames and 1 clips" in res.output
    assert "still over store.max_gb" in res.output
    assert present(store) == {3, 4, 5}
