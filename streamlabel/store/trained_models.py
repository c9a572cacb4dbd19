"""Training runs of the student: the ``models`` table of the manifest (issue 16).

One row per ``streamlabel train`` run, written when it starts (``running``) and updated when it ends
(``finished`` or ``failed``). ``promoted`` marks the run the daemon uses as its student (at most one row has it);
``streamlabel.train.runs.current_student`` reads it. The run's files live in ``<store>/models/<run_id>/``.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from streamlabel.events.outbox import enqueue_event
from streamlabel.store.manifest import Manifest, utc_now

MODELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    run_id        TEXT PRIMARY KEY,     -- YYYYmmddTHHMMSSZ-<suffix>, also the folder under <store>/models/
    base_model    TEXT NOT NULL,        -- what training started from (a .pt or a .yaml: random init)
    snapshot_hash TEXT NOT NULL,        -- SHA-256 of the frozen dataset (snapshot.json)
    frames        INTEGER NOT NULL,     -- frames in the snapshot (train + val)
    metrics       TEXT,                 -- JSON: the run's validation metrics, then its gold-set evaluation
    weights       TEXT,                 -- best.pt relative to the store root, NULL until finished
    started       TEXT NOT NULL,
    finished      TEXT,
    status        TEXT NOT NULL,        -- running | finished | failed
    error         TEXT NOT NULL DEFAULT '',
    promoted      INTEGER NOT NULL DEFAULT 0,  -- 1: the daemon's current student (one row at most)
    promoted_time TEXT
)
"""
RUNNING, FINISHED, FAILED = "running", "finished", "failed"


def ensure_models_table(db: sqlite3.Connection) -> None:
    """Create the ``models`` table (inside the caller's transaction) when the manifest has none yet."""
    db.execute(MODELS_SCHEMA)


def read_models(manifest_path: Path) -> list[dict[str, Any]]:
    """Every row of ``models`` (newest first) read without creating anything; [] without a manifest or table."""
    if not manifest_path.is_file():
        return []
    with closing(sqlite3.connect(f"file:{manifest_path}?mode=ro", uri=True, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'models'").fetchall()
        if not has:
            return []
        return [dict(r) for r in db.execute("SELECT * FROM models ORDER BY run_id DESC")]


class ModelRuns:
    """Reads and writes the ``models`` table of one store's manifest."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        with manifest.transaction() as db:
            ensure_models_table(db)

    def start(self, run_id: str, base_model: str, snapshot_hash: str, frames: int) -> None:
        """Record a run that starts now (status ``running``)."""
        with self.manifest.transaction() as db:
            db.execute(
                "INSERT INTO models (run_id, base_model, snapshot_hash, frames, started, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, base_model, snapshot_hash, frames, utc_now(), RUNNING),
            )

    def set_snapshot(self, run_id: str, snapshot_hash: str, frames: int) -> None:
        """Record the frozen dataset of a running run (known once the snapshot is taken)."""
        with self.manifest.transaction() as db:
            db.execute(
                "UPDATE models SET snapshot_hash = ?, frames = ? WHERE run_id = ?", (snapshot_hash, frames, run_id)
            )

    def finish(self, run_id: str, metrics: dict[str, Any], weights: str, event: BaseModel | None = None) -> None:
        """Mark a run finished with its metrics and weights, and enqueue ``event`` in the same transaction."""
        with self.manifest.transaction() as db:
            db.execute(
                "UPDATE models SET status = ?, finished = ?, metrics = ?, weights = ? WHERE run_id = ?",
                (FINISHED, utc_now(), json.dumps(metrics, sort_keys=True), weights, run_id),
            )
            if event is not None:
                enqueue_event(db, event)

    def fail(self, run_id: str, error: str) -> None:
        """Mark a run failed with the reason."""
        with self.manifest.transaction() as db:
            db.execute(
                "UPDATE models SET status = ?, finished = ?, error = ? WHERE run_id = ?",
                (FAILED, utc_now(), error, run_id),
            )

    def set_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        """Replace a run's metrics JSON (e.g. with its gold-set evaluation added)."""
        with self.manifest.transaction() as db:
            db.execute("UPDATE models SET metrics = ? WHERE run_id = ?", (json.dumps(metrics, sort_keys=True), run_id))

    def promote(self, run_id: str, event: BaseModel | None = None) -> None:
        """Make ``run_id`` the current student (clearing the flag elsewhere), with ``event`` in the same transaction."""
        with self.manifest.transaction() as db:
            db.execute("UPDATE models SET promoted = 0 WHERE promoted = 1")
            db.execute("UPDATE models SET promoted = 1, promoted_time = ? WHERE run_id = ?", (utc_now(), run_id))
            if event is not None:
                enqueue_event(db, event)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The row of ``run_id``, or None."""
        rows = self.manifest.query("SELECT * FROM models WHERE run_id = ?", (run_id,))
        return dict(rows[0]) if rows else None

    def promoted(self) -> str | None:
        """The run id of the current student, or None."""
        rows = self.manifest.query("SELECT run_id FROM models WHERE promoted = 1 LIMIT 1")
        return str(rows[0]["run_id"]) if rows else None


def dataset_frames(manifest: Manifest, since: str | None = None) -> list[dict[str, Any]]:
    """Frames with a dataset copy (image and label file), by frame id; ``since``: capture time >= this ISO time."""
    sql = (
        "SELECT frame_id, stream, time, subset, image, label, width, height, background FROM frames "
        "WHERE split = 'dataset' AND image IS NOT NULL AND label IS NOT NULL"
    )
    params: tuple[Any, ...] = ()
    if since:
        sql, params = sql + " AND time >= ?", (since,)
    return [dict(r) for r in manifest.query(sql + " ORDER BY frame_id", params)]


def audit_frames(manifest: Manifest) -> list[dict[str, Any]]:
    """Audit frames (chosen, done or not): ``frame_id``, ``stream``, ``time``; [] before any audit."""
    has = manifest.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audits'")
    if not has:
        return []
    rows = manifest.query(
        "SELECT f.frame_id, f.stream, f.time FROM audits a JOIN frames f ON f.frame_id = a.frame_id "
        "WHERE a.chosen = 1 ORDER BY f.frame_id"
    )
    return [dict(r) for r in rows]


def accepted_labels_since(manifest: Manifest, created_after: str | None) -> int:
    """Accepted labels of frames stored after ``created_after`` (UTC ISO; None: all of them)."""
    sql = "SELECT count(*) FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE l.status = 'accepted'"
    rows = manifest.query(sql + " AND f.created > ?", (created_after,)) if created_after else manifest.query(sql)
    return int(rows[0][0])
