"""Parts a person adds to a frame: a box drawn around a part the pipeline missed, segmented by SAM2.

The new ``labels`` row is inserted in the same transaction as its ``reviews`` row (decision ``add``, previous
status ``missed``), as a not-target candidate that no copy shows yet; the decision path (``Reviews._finish``) then
renders it as accepted. Its ``verdict_source`` is ``person`` (``audit.ADDED_SOURCE``) and it has no verdict: the
calibration counts it as a part the pipeline missed (recall). Undo makes it a not-target candidate again
(background, no label line): ``audit.WITHDRAWN``, which no queue or audit counts as waiting.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from streamlabel.frames import LabelStatus, Rejection
from streamlabel.store.audit import ADDED_SOURCE
from streamlabel.store.review_queue import ReviewConflict, ReviewError, UnknownItem

MISSED = "missed"  # reviews.previous_status of an add: the pipeline had no such part
MIN_POINTS = 3


def insert_added_label(db: sqlite3.Connection, frame_id: str, polygon: list[list[float]], class_name: str) -> int:
    """Insert the row of a part a person drew on ``frame_id`` (normalized ``polygon``); returns its id.

    Raises UnknownItem for a frame not in the manifest, ReviewConflict when the same part was just added (a
    double submit), ReviewError for a polygon of under 3 points or a frame rejected as a whole (a frame-level
    check failed: no copy of it would show the part).
    """
    frame = db.execute("SELECT width, height FROM frames WHERE frame_id = ?", (frame_id,)).fetchone()
    if frame is None:
        raise UnknownItem(f"frame {frame_id} is not in the manifest; go back to the queue")
    points = [[round(min(max(float(x), 0.0), 1.0), 6), round(min(max(float(y), 0.0), 1.0), 6)] for x, y in polygon]
    _refuse(db, frame_id, points)
    xs, ys = [x * frame["width"] for x, _ in points], [y * frame["height"] for _, y in points]
    box = [round(min(xs), 2), round(min(ys), 2), round(max(xs), 2), round(max(ys), 2)]
    anchor_xyxy, anchor_class = _anchor_around(db, frame_id, box)
    cur = db.execute(
        "INSERT INTO labels (frame_id, idx, class_id, class_name, status, xyxy, anchor_xyxy, anchor_class, "
        "polygon, verdict_source, hold_idx, flagged, rejection) VALUES (?, -1, 0, ?, ?, ?, ?, ?, ?, ?, -1, 0, ?)",
        (
            frame_id,
            class_name,
            str(LabelStatus.REJECTED),
            json.dumps(box),
            json.dumps(anchor_xyxy),
            anchor_class,
            json.dumps(points),
            ADDED_SOURCE,
            str(Rejection.NOT_TARGET),
        ),
    )
    return int(cur.lastrowid or 0)


def _refuse(db: sqlite3.Connection, frame_id: str, points: list[list[float]]) -> None:
    """Raise when this part cannot be added: too few points, a frame rejected as a whole, the same part added."""
    if len(points) < MIN_POINTS:
        raise ReviewError(f"frame {frame_id}: a part needs a polygon of {MIN_POINTS} or more points")
    rejected = "SELECT 1 FROM labels WHERE frame_id = ? AND rejection = ?"
    if db.execute(rejected, (frame_id, str(Rejection.REJECT_FRAME))).fetchone():
        raise ReviewError(
            f"frame {frame_id} is rejected as a whole (a frame check failed); a part added there "
            "would reach no copy. Undo that rejection first"
        )
    same = "SELECT id FROM labels WHERE frame_id = ? AND polygon = ? AND verdict_source = ? AND status = ?"
    twin = db.execute(same, (frame_id, json.dumps(points), ADDED_SOURCE, str(LabelStatus.ACCEPTED))).fetchone()
    if twin is not None:  # a double submit, or a second tab sending the same drawing
        raise ReviewConflict(f"frame {frame_id}: this part was already added (item {twin['id']}); reload the page")


def _anchor_around(db: sqlite3.Connection, frame_id: str, box: list[float]) -> tuple[list[float], str]:
    """The frame's anchor box (from its other parts) that holds the new part's centre, else the part's own box."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for row in db.execute("SELECT DISTINCT anchor_xyxy, anchor_class FROM labels WHERE frame_id = ?", (frame_id,)):
        x1, y1, x2, y2 = json.loads(row["anchor_xyxy"])
        if x1 <= cx <= x2 and y1 <= cy <= y2:
            return [x1, y1, x2, y2], str(row["anchor_class"])
    return box, ""


def add_plan() -> dict[str, Any]:
    """The ``reviews`` plan of an add: the new part becomes accepted by the person."""
    return {"decision": "add", "status": str(LabelStatus.ACCEPTED), "rejection": "", "undoes": None}


def undo_outcome(decision: str, previous_status: str, previous_rejection: str) -> tuple[str, str]:
    """Status and rejection that undoing ``decision`` restores: a withdrawn add becomes a not-target candidate."""
    if decision == "add":
        return str(LabelStatus.REJECTED), str(Rejection.NOT_TARGET)
    return previous_status, previous_rejection
