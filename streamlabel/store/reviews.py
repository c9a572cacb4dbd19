"""People's decisions on review items: the ``reviews`` table, the queue query, and apply / undo of a decision.

A decision on one part (a ``labels`` row) is applied in three steps, each crash-safe:

1. one transaction checks that the part is still in the status the person saw and inserts the ``reviews`` row
   with ``applied = 0`` (the intent; a second tab or a double click gets ``ReviewConflict`` here);
2. ``DatasetStore.render_dataset_copy`` commits the part's new status with the frame's new copies (review →
   dataset, the dataset image re-painted, label files rewritten) in its own transaction under the store's intent;
3. one transaction sets ``applied = 1`` and enqueues the ``reviewed`` event (transactional outbox).

Opening ``Reviews`` finishes every row a crash left with ``applied = 0`` (rolls it forward: the render is
idempotent), so the store is always as before or as after, and the event never precedes the files.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

from streamlabel.events.models import ReviewedEvent
from streamlabel.events.outbox import enqueue_event
from streamlabel.frames import LabelStatus, Rejection
from streamlabel.store.added_parts import MISSED, add_plan, insert_added_label, undo_outcome
from streamlabel.store.audit import ensure_schema as ensure_audit_schema
from streamlabel.store.audit import is_open_audit_part
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.manifest import utc_now
from streamlabel.store.review_queue import (
    OPEN_STATUSES,
    QueueFilter,
    ReviewConflict,
    ReviewError,
    ReviewItem,
    ReviewQueue,
    UnknownItem,
)

__all__ = [
    "OPEN_STATUSES",
    "Decision",
    "QueueFilter",
    "ReviewConflict",
    "ReviewError",
    "ReviewItem",
    "Reviews",
    "UnknownItem",
]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id                 INTEGER PRIMARY KEY,
    label_id           INTEGER NOT NULL REFERENCES labels(id),
    frame_id           TEXT NOT NULL,
    decision           TEXT NOT NULL,      -- accept | fix | reject | not_target | undo
    status             TEXT NOT NULL,      -- the part's status after the decision
    previous_status    TEXT NOT NULL,
    previous_rejection TEXT NOT NULL DEFAULT '',
    rejection          TEXT NOT NULL DEFAULT '',
    polygon            TEXT,               -- the corrected polygon (normalized), NULL when unchanged
    previous_polygon   TEXT,
    xyxy               TEXT,               -- the corrected part box (pixels: the polygon's bounds), NULL likewise
    previous_xyxy      TEXT,
    who                TEXT NOT NULL,
    time               TEXT NOT NULL,      -- UTC ISO 8601
    undoes             INTEGER REFERENCES reviews(id),
    undone_by          INTEGER REFERENCES reviews(id),
    applied            INTEGER NOT NULL DEFAULT 0,  -- 1 once the label and files reflect it (crash recovery)
    event_id           TEXT
);
CREATE INDEX IF NOT EXISTS reviews_label ON reviews(label_id, id);
CREATE INDEX IF NOT EXISTS reviews_unapplied ON reviews(id) WHERE applied = 0;
CREATE INDEX IF NOT EXISTS labels_status_confidence ON labels(status, verdict_confidence);
CREATE INDEX IF NOT EXISTS labels_status_disagreement ON labels(status, disagreement, verdict_confidence);
CREATE INDEX IF NOT EXISTS labels_track ON labels(track_id);
"""


class Decision(StrEnum):
    """What a person decided about one part."""

    ACCEPT = "accept"
    FIX = "fix"  # accept with a new mask (SAM2 clicks on the review page)
    REJECT = "reject"  # the target, but a label not good enough: painted out of the dataset copy
    NOT_TARGET = "not_target"  # not the target at all: stays background
    ADD = "add"  # a part the pipeline missed, drawn by the person (``Reviews.add``; store/added_parts.py)
    UNDO = "undo"


_OUTCOME = {
    Decision.ACCEPT: (LabelStatus.ACCEPTED, ""),
    Decision.FIX: (LabelStatus.ACCEPTED, ""),
    Decision.REJECT: (LabelStatus.REJECTED, Rejection.POOR_LABEL),
    Decision.NOT_TARGET: (LabelStatus.REJECTED, Rejection.NOT_TARGET),
}


class Reviews(ReviewQueue):
    """The decisions of people on one store. One instance per process; decisions are serialized."""

    def __init__(self, store: DatasetStore, review_threshold: float = 0.8) -> None:
        super().__init__(store, review_threshold)
        self._lock = threading.Lock()
        with self.manifest.transaction() as db:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
        ensure_audit_schema(self.manifest)
        self.recovered = self.recover()

    # ------------------------------------------------------------------------------------------------- writing

    def decide(
        self,
        label_id: int,
        decision: Decision,
        who: str,
        expect: str | None = None,
        polygon: list[list[float]] | None = None,
    ) -> dict[str, Any]:
        """Apply a person's decision on one part; returns its ``reviews`` row.

        ``expect`` is the status the person saw; when the part is in another status now (decided in another tab,
        a double submit) ReviewConflict names who changed it. ``polygon`` (normalized ``[[x, y], ...]``, at least
        3 points) goes with ``Decision.FIX`` only: it replaces the part's mask, and its bounds the part's box.
        Raises UnknownItem for an unknown part, ReviewError for a polygon without a fix or a fix without one.
        """
        if decision == Decision.UNDO:
            return self.undo(label_id, who)
        if decision == Decision.ADD:
            raise ReviewError(f"item {label_id}: an add draws a new part (Reviews.add), it decides no existing one")
        if (decision == Decision.FIX) != (polygon is not None and len(polygon) >= 3):
            raise ReviewError(f"item {label_id}: a fix needs a polygon of 3 or more points, and only a fix takes one")
        status, rejection = _OUTCOME[decision]

        def intent(db: sqlite3.Connection, label: dict[str, Any]) -> dict[str, Any]:
            if label["status"] not in OPEN_STATUSES and expect is None and not is_open_audit_part(db, label_id):
                raise ReviewConflict(f"item {label_id} is {label['status']}, not waiting for a decision; undo first")
            plan = {"decision": str(decision), "status": str(status), "rejection": str(rejection), "undoes": None}
            return plan | (_corrected(db, label, polygon) if polygon is not None else {})

        return self._apply(label_id, who, expect, intent)

    def undo(self, label_id: int, who: str) -> dict[str, Any]:
        """Reverse the latest decision on a part that is not undone yet (the same three steps)."""

        def intent(db: sqlite3.Connection, label: dict[str, Any]) -> dict[str, Any]:
            rows = list(
                db.execute(
                    "SELECT * FROM reviews WHERE label_id = ? AND decision != 'undo' AND undone_by IS NULL "
                    "ORDER BY id DESC LIMIT 1",
                    (label_id,),
                )
            )
            if not rows:
                raise ReviewConflict(f"item {label_id} has no decision to undo")
            last = dict(rows[0])
            if label["status"] != last["status"]:
                raise ReviewConflict(
                    f"item {label_id} changed after the decision to undo (now {label['status']}); reload the page"
                )
            status, rejection = undo_outcome(last["decision"], last["previous_status"], last["previous_rejection"])
            return {
                "decision": str(Decision.UNDO),
                "status": status,
                "rejection": rejection,
                "undoes": last["id"],
                "polygon": last["previous_polygon"],
                "xyxy": last["previous_xyxy"],
            }

        return self._apply(label_id, who, None, intent)

    def add(self, frame_id: str, polygon: list[list[float]], who: str) -> dict[str, Any]:
        """Add a part the pipeline missed to ``frame_id`` (normalized ``polygon``), accepted by ``who``.

        The same three steps as a decision: the new label row and its ``reviews`` row (decision ``add``) in one
        transaction, the render, the ``reviewed`` event. Returns the ``reviews`` row (``label_id``: the new part).
        """
        with self._lock:
            with self.manifest.transaction() as db:
                label_id = insert_added_label(db, frame_id, polygon, self.store.class_names[0])
                label = _label(db, label_id, self.store) | {"status": MISSED, "rejection": ""}
                review_id = _insert(db, label, add_plan(), who)
            return self._finish(review_id)

    def _apply(self, label_id: int, who: str, expect: str | None, intent: Any) -> dict[str, Any]:
        with self._lock:
            with self.manifest.transaction() as db:
                label = _label(db, label_id, self.store)
                if expect is not None and label["status"] != expect:
                    raise ReviewConflict(_changed(db, label_id, label["status"], expect))
                if db.execute("SELECT 1 FROM reviews WHERE label_id = ? AND applied = 0", (label_id,)).fetchone():
                    raise ReviewConflict(f"item {label_id}: a decision on it is being applied; reload in a moment")
                plan = intent(db, label)
                review_id = _insert(db, label, plan, who)
            return self._finish(review_id)

    def _finish(self, review_id: int) -> dict[str, Any]:
        """Steps 2 and 3 for one ``reviews`` row with ``applied = 0``; a render that cannot run withdraws the row."""
        row = dict(self.manifest.query("SELECT * FROM reviews WHERE id = ?", (review_id,))[0])
        updates = {"status": row["status"], "rejection": row["rejection"]}
        if row["polygon"] is not None:
            updates |= {"polygon": row["polygon"], "xyxy": row["xyxy"]}
        try:
            stored = self.store.render_dataset_copy(
                row["frame_id"], {row["label_id"]: updates}, publish=True, keep_original=True
            )
        except (FileNotFoundError, KeyError) as exc:
            self._withdraw(row)
            raise ReviewError(
                f"item {row['label_id']}: {row['decision']} cannot be applied, the frame's files are gone ({exc}); "
                "the decision was withdrawn"
            ) from exc
        track = self.manifest.query("SELECT track_id FROM labels WHERE id = ?", (row["label_id"],))[0][0]
        stream = self.manifest.query("SELECT stream FROM frames WHERE frame_id = ?", (row["frame_id"],))[0][0]

        def rel(path: Path | None) -> str | None:
            return None if path is None else str(path.relative_to(self.store.root))

        event = ReviewedEvent(
            stream=stream,
            review_id=review_id,
            frame_id=row["frame_id"],
            label_id=row["label_id"],
            decision=row["decision"],
            status=row["status"],
            previous_status=row["previous_status"],
            who=row["who"],
            track_id=track,
            image=rel(stored.image),
            label=rel(stored.label),
        )
        with self.manifest.transaction() as db:
            event_id = enqueue_event(db, event, frame_id=row["frame_id"])
            db.execute("UPDATE reviews SET applied = 1, event_id = ? WHERE id = ?", (event_id, review_id))
        return row | {"applied": 1, "event_id": event_id}

    def _withdraw(self, row: dict[str, Any]) -> None:
        """Take back a ``reviews`` row whose render cannot run (and the part an add drew)."""
        with self.manifest.transaction() as db:
            db.execute("UPDATE reviews SET undone_by = NULL WHERE undone_by = ?", (row["id"],))
            db.execute("DELETE FROM reviews WHERE id = ?", (row["id"],))
            if row["decision"] == Decision.ADD:
                db.execute("DELETE FROM labels WHERE id = ?", (row["label_id"],))

    def recover(self) -> list[int]:
        """Finish the decisions a crash cut short (``applied = 0``); returns their ids."""
        ids = [int(r[0]) for r in self.manifest.query("SELECT id FROM reviews WHERE applied = 0 ORDER BY id")]
        for review_id in ids:
            try:
                self._finish(review_id)
            except ReviewError as exc:
                log.warning("%s", exc)
        if ids:
            log.warning("finished %d review decision(s) a crash cut short: %s", len(ids), ids)
        return ids


def _label(db: sqlite3.Connection, label_id: int, store: DatasetStore) -> dict[str, Any]:
    rows = list(
        db.execute("SELECT id, frame_id, status, rejection, polygon, xyxy FROM labels WHERE id = ?", (label_id,))
    )
    if not rows:
        raise UnknownItem(f"item {label_id} is not in the manifest of {store.root}; go back to the queue")
    return dict(rows[0])


def _changed(db: sqlite3.Connection, label_id: int, status: str, expect: str) -> str:
    last = db.execute(
        "SELECT who, time FROM reviews WHERE label_id = ? ORDER BY id DESC LIMIT 1", (label_id,)
    ).fetchone()
    by = f" by {last['who']} at {last['time']}" if last else ""
    return f"item {label_id} is already {status} (was {expect} on your page; changed{by}); reload to see it"


def _corrected(db: sqlite3.Connection, label: dict[str, Any], polygon: list[list[float]]) -> dict[str, Any]:
    """The polygon and box columns of a fix (the box: the polygon's bounds in pixels)."""
    width, height = db.execute("SELECT width, height FROM frames WHERE frame_id = ?", (label["frame_id"],)).fetchone()
    points = [[min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)] for x, y in polygon]
    xs, ys = [p[0] * width for p in points], [p[1] * height for p in points]
    box = [round(min(xs), 2), round(min(ys), 2), round(max(xs), 2), round(max(ys), 2)]
    return {"polygon": json.dumps([[round(x, 6), round(y, 6)] for x, y in points]), "xyxy": json.dumps(box)}


def _insert(db: sqlite3.Connection, label: dict[str, Any], plan: dict[str, Any], who: str) -> int:
    fixed = plan.get("polygon") is not None
    cur = db.execute(
        "INSERT INTO reviews (label_id, frame_id, decision, status, previous_status, previous_rejection, rejection, "
        "who, time, undoes, polygon, previous_polygon, xyxy, previous_xyxy) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            label["id"],
            label["frame_id"],
            plan["decision"],
            plan["status"],
            label["status"],
            label["rejection"] or "",
            plan["rejection"],
            who,
            utc_now(),
            plan["undoes"],
            plan.get("polygon"),
            label["polygon"] if fixed else None,
            plan.get("xyxy"),
            label["xyxy"] if fixed else None,
        ),
    )
    review_id = int(cur.lastrowid or 0)
    if plan["undoes"] is not None:
        db.execute("UPDATE reviews SET undone_by = ? WHERE id = ?", (review_id, plan["undoes"]))
    return review_id
