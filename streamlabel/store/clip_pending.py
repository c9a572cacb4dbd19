"""Clip ids, and the clips a stop left for the next start (the ``clips_pending`` table).

A stop that has no time left for a clip cut from a local file records it here (``add_pending``), with the person
boxes of its sampled frames (they live only in memory), and the next start cuts it first (``pending_clips``).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from streamlabel.events.models import utc_iso
from streamlabel.store.clip_people import PeopleSpan
from streamlabel.store.dataset import DatasetStore

if TYPE_CHECKING:
    from streamlabel.tracking.segments import TrackSegment

PENDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips_pending (
    clip_id TEXT PRIMARY KEY,
    stream  TEXT NOT NULL,
    url     TEXT NOT NULL,            -- the local file the clip is remuxed from at the next start
    segment TEXT NOT NULL,            -- JSON of the TrackSegment
    created TEXT NOT NULL,
    people  TEXT                      -- JSON of the person boxes of its sampled frames (PeopleSpan), NULL: none known
);
"""


def clip_id_of(segment: TrackSegment) -> str:
    """``<stream>_<YYYYmmddTHHMMSSmmm>Z_t<track_id>``: the segment's start time and track; stable per segment."""
    t = segment.start_time.astimezone(UTC)
    return f"{segment.stream}_{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z_t{segment.track_id}"


def segment_json(segment: TrackSegment) -> str:
    """A TrackSegment as JSON (times as ISO 8601) for the ``clips_pending`` table."""
    doc = {k: getattr(segment, k) for k in segment.__dataclass_fields__}
    doc.update(start_time=segment.start_time.isoformat(), end_time=segment.end_time.isoformat())
    doc["frame_ids"] = list(segment.frame_ids)
    return json.dumps(doc)


def segment_of(text: str) -> TrackSegment:
    """The TrackSegment ``segment_json`` wrote."""
    from streamlabel.tracking.segments import TrackSegment

    doc = json.loads(text)
    doc.update(
        start_time=datetime.fromisoformat(doc["start_time"]),
        end_time=datetime.fromisoformat(doc["end_time"]),
        frame_ids=tuple(doc["frame_ids"]),
    )
    return TrackSegment(**doc)


def add_pending(store: DatasetStore, segment: TrackSegment, url: str, people: PeopleSpan | None = None) -> None:
    """Record a clip the stop left no time for, with the person boxes of its range (``people``, taken while they
    are still in memory); the next start cuts it (``pending_clips``, ``pending_people``)."""
    with store.manifest.transaction() as db:
        _ensure_pending_table(db)  # created by the first stop that needs it
        db.execute(
            "INSERT OR IGNORE INTO clips_pending (clip_id, stream, url, segment, created, people) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (clip_id_of(segment), segment.stream, url, segment_json(segment), utc_iso(), _people_json(people)),
        )


def _ensure_pending_table(db: sqlite3.Connection) -> None:
    db.execute(PENDING_SCHEMA)
    if "people" not in {r[1] for r in db.execute("PRAGMA table_info(clips_pending)")}:
        db.execute("ALTER TABLE clips_pending ADD COLUMN people TEXT")


def _people_json(people: PeopleSpan | None) -> str | None:
    return None if people is None else people.to_json()


def pending_people(store: DatasetStore, clip_id: str) -> PeopleSpan | None:
    """The person boxes recorded with a pending clip; None when it has no row, or a row of a version that recorded
    none (``people`` NULL)."""
    if not _has_pending_table(store):
        return None
    names = {r[1] for r in store.manifest.query("PRAGMA table_info(clips_pending)")}
    if "people" not in names:
        return None
    rows = store.manifest.query("SELECT people FROM clips_pending WHERE clip_id = ?", (clip_id,))
    if not rows or rows[0]["people"] is None:
        return None
    return PeopleSpan.from_json(rows[0]["people"])


def _has_pending_table(store: DatasetStore) -> bool:
    return bool(store.manifest.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'clips_pending'"))


def pending_clips(store: DatasetStore) -> list[tuple[TrackSegment, str]]:
    """The clips left for this start by the last stop, oldest first: (segment, source file)."""
    if not _has_pending_table(store):
        return []
    rows = store.manifest.query("SELECT segment, url FROM clips_pending ORDER BY created, clip_id")
    return [(segment_of(r["segment"]), r["url"]) for r in rows]


def count_pending(store: DatasetStore) -> int:
    """How many clips the last stops left for a later start (rows of ``clips_pending``)."""
    if not _has_pending_table(store):
        return 0
    return int(store.manifest.query("SELECT count(*) FROM clips_pending")[0][0])


def forget_pending(db: sqlite3.Connection, clip_id: str) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'clips_pending'").fetchone():
        db.execute("DELETE FROM clips_pending WHERE clip_id = ?", (clip_id,))
