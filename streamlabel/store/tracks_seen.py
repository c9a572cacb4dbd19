"""Tracks the Labeler saw, kept frame or not: the ``tracks_seen`` table of the manifest (issue 14).

The novelty gate and the daily budget (``judging.Sifter``) drop frames before the validator and the store, so
without this table a track whose every frame was dropped would leave no trace. The Sifter gathers one
``Sighting`` per (stream, part track) while it sifts (``Sightings``); the runner takes them after each batch and
writes them here in one transaction per batch (``TracksSeen.write``), never one per frame.

One row per run, stream and part track: the track ids of the tracker restart with every run of the daemon, so
``run`` (the UTC time the runner started) keeps two runs' track 3 apart. ``frames_kept`` counts the frames the
gate and the budget sent on (to the validator and the store; what the validator then decided is in ``labels``);
``frames_seen - frames_kept`` were dropped as near-copies or refused by the budget. With the gate off every frame
of a confirmed track is kept.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

TRACKS_SEEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks_seen (
    run         TEXT NOT NULL,        -- UTC ISO 8601 start of the runner (track ids restart with each run)
    stream      TEXT NOT NULL,
    track_id    INTEGER NOT NULL,     -- the part track (labels.track_id)
    first_time  TEXT NOT NULL,        -- UTC ISO 8601 capture time of its first and last sifted frame
    last_time   TEXT NOT NULL,
    frames_seen INTEGER NOT NULL,     -- frames with a part of this track that reached the gate
    frames_kept INTEGER NOT NULL,     -- of those, frames the gate and the budget sent on
    PRIMARY KEY (run, stream, track_id)
)
"""
UPSERT = """
INSERT INTO tracks_seen VALUES (:run, :stream, :track_id, :first_time, :last_time, :frames_seen, :frames_kept)
ON CONFLICT (run, stream, track_id) DO UPDATE SET
    first_time = min(first_time, excluded.first_time),
    last_time = max(last_time, excluded.last_time),
    frames_seen = frames_seen + excluded.frames_seen,
    frames_kept = frames_kept + excluded.frames_kept
"""


@dataclass
class Sighting:
    """What one batch (or more) saw of one part track."""

    stream: str
    track_id: int
    first_time: datetime
    last_time: datetime
    frames_seen: int = 0
    frames_kept: int = 0


class Sightings:
    """The sightings gathered since the last ``take``, one per (stream, track); not thread-safe (the Sifter locks)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], Sighting] = {}

    def add(self, stream: str, time: datetime, track_ids: Iterable[int], kept: bool) -> None:
        """Count one frame of ``stream`` at ``time`` for each confirmed track in ``track_ids`` (negative: none)."""
        for tid in {int(t) for t in track_ids if int(t) >= 0}:
            s = self._seen.get((stream, tid))
            if s is None:
                s = self._seen[(stream, tid)] = Sighting(stream, tid, time, time)
            s.first_time, s.last_time = min(s.first_time, time), max(s.last_time, time)
            s.frames_seen += 1
            s.frames_kept += int(kept)

    def take(self) -> list[Sighting]:
        """The sightings so far, in (stream, track) order; the record starts empty again."""
        out = [self._seen[k] for k in sorted(self._seen)]
        self._seen = {}
        return out

    def __len__(self) -> int:
        return len(self._seen)


def ensure_tracks_seen_table(db: sqlite3.Connection) -> None:
    """Create the ``tracks_seen`` table (inside the caller's transaction) when the manifest has none yet."""
    db.execute(TRACKS_SEEN_SCHEMA)


def has_tracks_seen(manifest: Manifest) -> bool:
    """Whether the manifest has the table (a store written before it existed has none)."""
    rows = manifest.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tracks_seen'")
    return bool(rows)


class TracksSeen:
    """The writer of one run's sightings into ``tracks_seen``."""

    def __init__(self, manifest: Manifest, run: str) -> None:
        self.manifest, self.run = manifest, run
        with manifest.transaction() as db:
            ensure_tracks_seen_table(db)

    def write(self, sightings: Sequence[Sighting]) -> int:
        """Add ``sightings`` to the run's rows in one transaction; returns how many rows it touched."""
        if not sightings:
            return 0
        rows = [
            {
                "run": self.run,
                "stream": s.stream,
                "track_id": s.track_id,
                "first_time": s.first_time.isoformat(),
                "last_time": s.last_time.isoformat(),
                "frames_seen": s.frames_seen,
                "frames_kept": s.frames_kept,
            }
            for s in sightings
        ]
        with self.manifest.transaction() as db:
            db.executemany(UPSERT, rows)
        log.debug("tracks_seen: %d track sightings written for run %s", len(rows), self.run)
        return len(rows)
