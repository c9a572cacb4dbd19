"""The SQLite manifest (WAL mode): frames, labels with their verdicts, and provenance of every run."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from streamlabel.events.outbox import SCHEMA as OUTBOX_SCHEMA
from streamlabel.events.outbox import enqueue_event

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    config_hash TEXT PRIMARY KEY,
    config      TEXT NOT NULL,          -- the effective config as JSON
    models      TEXT NOT NULL,          -- stage -> model id, and library versions
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    frame_id    TEXT PRIMARY KEY,
    stream      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    pts         REAL NOT NULL,
    time        TEXT NOT NULL,          -- UTC capture time, ISO 8601
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    split       TEXT NOT NULL,          -- dataset | review | rejected | pending
    image       TEXT,                   -- path relative to the store root, NULL when not kept
    label       TEXT,
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    created     TEXT NOT NULL,
    subset      TEXT,                   -- train | val: the camera-day's split (dataset copies)
    hold        TEXT,                   -- review | pending: the unpainted copy beside a dataset copy, else NULL
    hold_image  TEXT,                   -- that copy's image and label file
    hold_label  TEXT,
    background  INTEGER NOT NULL DEFAULT 0,  -- 1: a negative frame (no anchor, no person), empty label file
    rev         INTEGER NOT NULL DEFAULT 0   -- bumped by every re-render (crash recovery)
);
CREATE INDEX IF NOT EXISTS frames_stream_time ON frames(stream, time);
CREATE TABLE IF NOT EXISTS labels (
    id                 INTEGER PRIMARY KEY,
    frame_id           TEXT NOT NULL REFERENCES frames(frame_id),
    idx                INTEGER NOT NULL,    -- line number in the label file (0-based), -1 when not written
    class_id           INTEGER NOT NULL,
    class_name         TEXT NOT NULL,
    status             TEXT NOT NULL,       -- accepted | review | rejected | pending
    xyxy               TEXT NOT NULL,       -- part box, pixels
    anchor_xyxy        TEXT NOT NULL,
    anchor_class       TEXT NOT NULL,
    score              REAL,                -- grounding score
    mask_score         REAL,
    polygon            TEXT NOT NULL,       -- normalized [[x, y], ...]
    verdict_passed     INTEGER,
    verdict_confidence REAL,
    verdict_source     TEXT,
    verdict_checks     TEXT,
    verdict_reason     TEXT,
    verdict_model      TEXT,
    verdict_raw        TEXT,
    verdict_reused     INTEGER,
    track_id           INTEGER,
    hold_idx           INTEGER NOT NULL DEFAULT -1,  -- line in the hold copy's label file, -1 when not there
    flagged            INTEGER NOT NULL DEFAULT 0,   -- 1: the mask was inconsistent with its track
    rejection          TEXT NOT NULL DEFAULT '',     -- reject_frame | not_target | poor_label, '' if not rejected
    verdict_check_probs TEXT                         -- JSON check -> probability it is true
);
CREATE INDEX IF NOT EXISTS labels_frame ON labels(frame_id);
CREATE INDEX IF NOT EXISTS labels_status ON labels(status);
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# store.durability -> SQLite's synchronous setting (WAL mode): what a commit survives.
SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}


class Manifest:
    """Thread-safe access to ``manifest.sqlite``; every write is one transaction."""

    def __init__(self, path: Path, durability: str = "process") -> None:
        """Open (or create) the manifest; ``durability`` 'power' makes every commit reach the disk (SQLite
        ``synchronous=FULL``), 'process' lets the last commits of a power cut roll back (``NORMAL``; a killed
        process loses nothing either way in WAL mode)."""
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as db:
            for stmt in (SCHEMA + OUTBOX_SCHEMA).split(";"):
                if stmt.strip():
                    db.execute(stmt)
            _add_missing_columns(db)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record_run(self, config_hash: str, config: dict[str, Any], models: dict[str, Any]) -> None:
        """Remember the config and models behind ``config_hash`` (once)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)",
                (config_hash, json.dumps(config, sort_keys=True), json.dumps(models, sort_keys=True), utc_now()),
            )

    def insert_frame(
        self, frame: dict[str, Any], labels: Iterable[dict[str, Any]], events: Iterable[BaseModel] = ()
    ) -> list[str]:
        """Insert a frame row, its label rows and its outgoing events in one transaction; returns the event ids."""
        with self.transaction() as db:
            cols = [c for c in _FRAME_COLUMNS if c in frame]
            names, marks = ", ".join([*cols, "created"]), ", ".join(":" + c for c in [*cols, "created"])
            db.execute(f"INSERT INTO frames ({names}) VALUES ({marks})", {**frame, "created": utc_now()})
            db.executemany(_INSERT_LABEL, [_label_params(row, frame["frame_id"]) for row in labels])
            return [enqueue_event(db, event, frame_id=frame["frame_id"]) for event in events]

    def has_frame(self, frame_id: str) -> bool:
        """Whether the manifest has a row for ``frame_id``."""
        return bool(self.query("SELECT 1 FROM frames WHERE frame_id = ?", (frame_id,)))

    def frame(self, frame_id: str) -> dict[str, Any] | None:
        """The frame row of ``frame_id``, or None."""
        rows = self.query("SELECT * FROM frames WHERE frame_id = ?", (frame_id,))
        return dict(rows[0]) if rows else None

    def labels_of(self, frame_id: str) -> list[dict[str, Any]]:
        """The label rows of a frame, in the order they were written."""
        return [dict(r) for r in self.query("SELECT * FROM labels WHERE frame_id = ? ORDER BY id", (frame_id,))]

    def last_frame(self, stream: str) -> tuple[int, float] | None:
        """``(seq, pts)`` of the newest stored frame of ``stream`` (by capture time), or None."""
        rows = self.query(
            "SELECT seq, pts FROM frames WHERE stream = ? ORDER BY time DESC, seq DESC LIMIT 1", (stream,)
        )
        return (int(rows[0]["seq"]), float(rows[0]["pts"])) if rows else None

    def day_subset(self, stream: str, day: str) -> str | None:
        """The subset (train/val) the stored frames of one camera-day (``YYYY-MM-DD``, UTC) went to, or None."""
        rows = self.query(
            "SELECT subset FROM frames WHERE stream = ? AND time >= ? AND time < ? AND subset IS NOT NULL LIMIT 1",
            (stream, day, day + "\uffff"),
        )
        return str(rows[0]["subset"]) if rows else None

    def update_frame(
        self, frame: dict[str, Any], labels: Iterable[dict[str, Any]], events: Iterable[BaseModel] = ()
    ) -> list[str]:
        """Replace a frame's copies (``frame`` holds the changed frame columns) and its labels' changed columns.

        One transaction with the events; each label dict names its row by ``id``.
        """
        with self.transaction() as db:
            cols = [c for c in _FRAME_COLUMNS if c in frame and c != "frame_id"]
            db.execute(f"UPDATE frames SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE frame_id = :frame_id", frame)
            for row in labels:
                sets = [c for c in _LABEL_COLUMNS if c in row and c != "frame_id"]
                db.execute(f"UPDATE labels SET {', '.join(f'{c} = :{c}' for c in sets)} WHERE id = :id", row)
            return [enqueue_event(db, event, frame_id=frame["frame_id"]) for event in events]

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Read rows (a snapshot; safe while another thread writes)."""
        with self._lock:
            return list(self._db.execute(sql, params))

    def counts(self) -> dict[str, int]:
        """Labels per status."""
        return {r["status"]: r["n"] for r in self.query("SELECT status, COUNT(*) AS n FROM labels GROUP BY status")}

    def outbox_pending(self, after_seq: int = 0, limit: int = 100) -> list[sqlite3.Row]:
        """Undelivered outbox rows with ``seq > after_seq``, oldest first."""
        return self.query(
            "SELECT seq, id, stream, kind, topic, payload, qos, retain FROM outbox "
            "WHERE delivered IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )

    def mark_delivered(self, seqs: Iterable[int]) -> None:
        """Set ``delivered`` (now) on the outbox rows ``seqs``, in one transaction."""
        now = utc_now()
        with self.transaction() as db:
            db.executemany(
                "UPDATE outbox SET delivered = ? WHERE seq = ? AND delivered IS NULL", [(now, s) for s in seqs]
            )

    def outbox_depth(self) -> int:
        """How many outbox rows wait for delivery."""
        return int(self.query("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_LABEL_COLUMNS = (
    "frame_id",
    "idx",
    "class_id",
    "class_name",
    "status",
    "xyxy",
    "anchor_xyxy",
    "anchor_class",
    "score",
    "mask_score",
    "polygon",
    "verdict_passed",
    "verdict_confidence",
    "verdict_source",
    "verdict_checks",
    "verdict_reason",
    "verdict_model",
    "verdict_raw",
    "verdict_reused",
    "track_id",
    "hold_idx",
    "flagged",
    "rejection",
    "verdict_check_probs",
    "disagreement",
)

_FRAME_COLUMNS = (
    "frame_id",
    "stream",
    "seq",
    "pts",
    "time",
    "width",
    "height",
    "split",
    "image",
    "label",
    "config_hash",
    "subset",
    "hold",
    "hold_image",
    "hold_label",
    "background",
    "rev",
    "original",
)
# Values of label columns a row may leave out (NOT NULL columns added with schema version 2).
_LABEL_DEFAULTS: dict[str, Any] = {"hold_idx": -1, "flagged": 0, "rejection": ""}
_INSERT_LABEL = (
    f"INSERT INTO labels ({', '.join(_LABEL_COLUMNS)}) VALUES ({', '.join(':' + c for c in _LABEL_COLUMNS)})"
)


def _label_params(row: dict[str, Any], frame_id: str) -> dict[str, Any]:
    return {c: row.get(c, _LABEL_DEFAULTS.get(c)) for c in _LABEL_COLUMNS} | {"frame_id": frame_id}


# Columns added after schema version 1, added by ALTER TABLE when an older store is opened.
_ADDED_COLUMNS = {
    "frames": (
        ("subset", "TEXT"),
        ("hold", "TEXT"),
        ("hold_image", "TEXT"),
        ("hold_label", "TEXT"),
        ("background", "INTEGER NOT NULL DEFAULT 0"),
        ("rev", "INTEGER NOT NULL DEFAULT 0"),
        ("original", "TEXT"),  # originals/...: unpainted pixels a person's decision kept for undo (store/originals.py)
    ),
    "labels": (
        ("hold_idx", "INTEGER NOT NULL DEFAULT -1"),
        ("flagged", "INTEGER NOT NULL DEFAULT 0"),
        ("rejection", "TEXT NOT NULL DEFAULT ''"),
        ("verdict_check_probs", "TEXT"),
        ("disagreement", "REAL"),  # 0-1: how much the student disagrees (docs/student.md); NULL: no student
    ),
}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a store written by an older version up to this schema (new columns get their defaults)."""
    for table, columns in _ADDED_COLUMNS.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
