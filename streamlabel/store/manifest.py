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

SCHEMA_VERSION = 1

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
    created     TEXT NOT NULL
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
    track_id           INTEGER
);
CREATE INDEX IF NOT EXISTS labels_frame ON labels(frame_id);
CREATE INDEX IF NOT EXISTS labels_status ON labels(status);
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Manifest:
    """Thread-safe access to ``manifest.sqlite``; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as db:
            for stmt in (SCHEMA + OUTBOX_SCHEMA).split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

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
            db.execute(
                "INSERT INTO frames (frame_id, stream, seq, pts, time, width, height, split, image, label, "
                "config_hash, created) VALUES (:frame_id, :stream, :seq, :pts, :time, :width, :height, :split, "
                ":image, :label, :config_hash, :created)",
                {**frame, "created": utc_now()},
            )
            cols = list(_LABEL_COLUMNS)
            db.executemany(
                f"INSERT INTO labels ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})",
                [{c: row.get(c) for c in cols} | {"frame_id": frame["frame_id"]} for row in labels],
            )
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
)
