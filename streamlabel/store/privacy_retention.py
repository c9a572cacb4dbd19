"""``store.review_max_age_days``: review and pending copies (unpainted footage of a home) do not wait forever.

``expire_held_copies(store, max_age_days)`` deletes the review and pending copies of frames captured more than
``max_age_days`` ago, whether a frame's only copy (``frames.split``) or the copy kept beside its dataset copy
(``frames.hold``). Their waiting parts are given up as ``DatasetStore.drop_copies`` does: the parts that waited
become ``rejected`` as ``poor_label`` (so they stay ignore regions of a dataset copy, which is kept unchanged),
and a frame left without any copy becomes ``split = 'rejected'`` with ``image`` and ``label`` NULL. Rows,
verdicts and events stay.

Crash safety as in ``retention.prune``: the manifest is changed first (one transaction per batch, with a
``pruned`` row of reason ``review_age``, ``kind`` ``frame`` or ``hold``, naming the files), then the files are
deleted and the ``pruned`` rows marked done; files a crash left behind are deleted by the next ``prune`` (its
sweep of the ``pruned`` table). Only ``manifest.query`` and ``manifest.transaction`` are used, so it runs on a
``retention.StoreHandle`` too.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamlabel.frames import LabelStatus, Rejection
from streamlabel.store.manifest import utc_now
from streamlabel.store.retention import PRUNED_SCHEMA

if TYPE_CHECKING:
    from streamlabel.store.retention import StoreLike

log = logging.getLogger(__name__)

BATCH = 200  # frames changed per manifest transaction
REASON = "review_age"
HELD = ("review", "pending")
_SELECT = (
    "SELECT frame_id, split, image, label, hold, hold_image, hold_label, time FROM frames "
    "WHERE (split IN ('review', 'pending') AND image IS NOT NULL) "
    "OR (hold IN ('review', 'pending') AND hold_image IS NOT NULL)"
)


@dataclass
class ExpiryReport:
    """What one ``expire_held_copies`` did."""

    frames: Counter[str] = field(default_factory=Counter)  # held destination (review, pending) -> frames expired
    files: int = 0
    bytes: int = 0

    def summary(self) -> str:
        what = ", ".join(f"{n} {d}" for d, n in sorted(self.frames.items())) or "no"
        return f"expired {what} copies older than store.review_max_age_days ({self.files} files, {self.bytes} bytes)"


def expire_held_copies(store: StoreLike, max_age_days: float, now: datetime | None = None) -> ExpiryReport:
    """Delete review and pending copies of frames captured before ``now - max_age_days``; returns what went.

    Args:
        store: a DatasetStore or ``retention.StoreHandle`` (``root`` and ``manifest``).
        max_age_days: ``store.review_max_age_days``.
        now: the current time (tests); default the UTC wall clock.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=max_age_days)
    with store.manifest.transaction() as db:
        db.execute(PRUNED_SCHEMA)
    rows = [dict(r) for r in store.manifest.query(_SELECT)]
    old = sorted((r for r in rows if _utc(r["time"]) < cutoff), key=lambda r: (r["time"], r["frame_id"]))
    report = ExpiryReport()
    for start in range(0, len(old), BATCH):
        _expire_batch(store.root, store.manifest, old[start : start + BATCH], report)
    if report.files:
        log.info("%s", report.summary())
    return report


def _expire_batch(root: Path, manifest: Any, frames: list[dict[str, Any]], report: ExpiryReport) -> None:
    """Change the rows of ``frames`` in one transaction, then delete their held files."""
    plans = [(frame, _held_files(frame)) for frame in frames]
    sizes = [sum(_size(root / f) for f in files) for _, files in plans]
    with manifest.transaction() as db:
        ids = [_mark(db, frame, files, size) for (frame, files), size in zip(plans, sizes, strict=True)]
    for (frame, files), size in zip(plans, sizes, strict=True):
        for rel in files:
            (root / rel).unlink(missing_ok=True)
        report.frames[_held(frame)] += 1
        report.files += len(files)
        report.bytes += size
    with manifest.transaction() as db:
        db.executemany("UPDATE pruned SET done = 1 WHERE id = ?", [(i,) for i in ids])


def _held(frame: dict[str, Any]) -> str:
    """The destination of the frame's held copy: its split when that is review/pending, else its hold."""
    return frame["split"] if frame["split"] in HELD else frame["hold"]


def _held_files(frame: dict[str, Any]) -> tuple[str, ...]:
    if frame["split"] in HELD:
        paths = (frame["image"], frame["label"], frame["hold_image"], frame["hold_label"])
    else:
        paths = (frame["hold_image"], frame["hold_label"])
    return tuple(p for p in paths if p)


def _mark(db: sqlite3.Connection, frame: dict[str, Any], files: tuple[str, ...], size: int) -> int:
    """Reject the frame's waiting parts, drop its held copy from its row, and record a ``pruned`` row."""
    fid, only_copy = frame["frame_id"], frame["split"] in HELD
    waiting = (LabelStatus.REVIEW, LabelStatus.PENDING, *((LabelStatus.ACCEPTED,) if only_copy else ()))
    marks = ", ".join("?" for _ in waiting)
    db.execute(
        f"UPDATE labels SET status = ?, rejection = ?, verdict_reason = ?, hold_idx = -1 "
        f"WHERE frame_id = ? AND status IN ({marks})",
        (LabelStatus.REJECTED, Rejection.POOR_LABEL, _reason(frame), fid, *waiting),
    )
    db.execute("UPDATE labels SET hold_idx = -1 WHERE frame_id = ?", (fid,))
    if only_copy:
        db.execute("UPDATE labels SET idx = -1 WHERE frame_id = ?", (fid,))
        db.execute(
            "UPDATE frames SET split = 'rejected', image = NULL, label = NULL, hold = NULL, hold_image = NULL, "
            "hold_label = NULL WHERE frame_id = ?",
            (fid,),
        )
    else:
        db.execute("UPDATE frames SET hold = NULL, hold_image = NULL, hold_label = NULL WHERE frame_id = ?", (fid,))
    cur = db.execute(  # kind as retention.prune writes it: the frame's only copy, or the copy beside the dataset
        "INSERT INTO pruned (kind, ref, split, files, bytes, reason, pruned) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("frame" if only_copy else "hold", fid, _held(frame), "\n".join(files), size, REASON, utc_now()),
    )
    return int(cur.lastrowid or 0)


def _reason(frame: dict[str, Any]) -> str:
    return f"{_held(frame)} copy expired: captured {frame['time']}, older than store.review_max_age_days"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
