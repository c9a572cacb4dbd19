"""Audit items and the validator's calibration, measured on them (docs/review.md, "Audit" and "Calibration").

The review queue holds only what the pipeline was unsure of, so it never shows an auto-accepted label. The audit is
an uncensored sample: a share ``review.audit_fraction`` of the stored frames that have parts, whatever their
status, stratified by stream, day or night (``budget.is_infrared`` on the stored image) and confidence bin (the
frame's lowest part confidence). Each stratum gets ``ceil(fraction × frames considered)`` audit frames; each
selection takes the newly considered frames in the order of a hash of their frame id, and frames are considered in
frame-id order (``batch_frames`` at a time), so the choice is reproducible and grows with the stratum without ever
dropping a chosen frame. The selection runs in the daemon's housekeeping (``streamlabel review``: a thread at
start); page requests only read the ``audits`` table.

The ``audits`` table has one row per frame considered (its stratum is computed once: the image is read once);
``chosen`` marks audit frames. A person decides every part of an audit frame; a part counts once, with its live
(latest, not undone) decision, whichever page it came from; an audit frame is done when every part has one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from streamlabel.store.budget import is_infrared
from streamlabel.store.manifest import Manifest, utc_now

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audits (
    frame_id TEXT PRIMARY KEY REFERENCES frames(frame_id),
    stratum  TEXT NOT NULL,     -- stream|day or night|confidence bin
    chosen   INTEGER NOT NULL,  -- 1: an audit frame
    time     TEXT NOT NULL      -- UTC ISO 8601: when it was considered (and chosen)
);
CREATE INDEX IF NOT EXISTS audits_chosen ON audits(chosen, frame_id);
"""
UNREADABLE = "unreadable"  # the stratum of a frame whose image does not decode: considered, never chosen
BIN_WIDTH = 0.2  # confidence bins of the strata: 0.0-0.2 ... 0.8-1.0, and "none" (never judged)
POSITIVE = ("accept", "fix", "add")  # decisions that say the label is right
ADDED_SOURCE = "person"  # labels.verdict_source of a part a person drew around a missed one (store/added_parts.py)
# A part a person added and then took back (undo of the add: a not-target candidate); never waits for a decision.
WITHDRAWN = f"(l.verdict_source = '{ADDED_SOURCE}' AND l.status = 'rejected' AND l.rejection = 'not_target')"

# The live decision on each part: its latest decision that is not an undo and not undone.
LIVE_DECISIONS = """
SELECT r.label_id, r.decision FROM reviews r
WHERE r.decision != 'undo' AND r.undone_by IS NULL
  AND r.id = (SELECT max(id) FROM reviews x
              WHERE x.label_id = r.label_id AND x.decision != 'undo' AND x.undone_by IS NULL)
"""
# What the pipeline decided on each part: the status before any person's decision.
PIPELINE_STATUS = """
SELECT l.id, l.frame_id, l.verdict_confidence,
       coalesce((SELECT previous_status FROM reviews r WHERE r.label_id = l.id ORDER BY r.id LIMIT 1), l.status)
FROM labels l
"""


def ensure_schema(manifest: Manifest) -> None:
    """Create the ``audits`` table (idempotent)."""
    with manifest.transaction() as db:
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                db.execute(stmt)


def is_open_audit_part(db: sqlite3.Connection, label_id: int) -> bool:
    """Whether a part belongs to an audit frame and has no live decision yet (any status may then be decided)."""
    row = db.execute(
        "SELECT 1 FROM labels l WHERE l.id = ? AND l.frame_id IN (SELECT frame_id FROM audits WHERE chosen = 1) "
        f"AND NOT {WITHDRAWN} AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.label_id = l.id AND r.decision != 'undo' "
        "AND r.undone_by IS NULL)",
        (label_id,),
    ).fetchone()
    return row is not None


def stratum_of(stream: str, night: bool, confidence: float | None) -> str:
    """The stratum key ``stream|day|0.8-1.0`` of a frame (``none`` for a frame whose parts were never judged)."""
    if confidence is None:
        band = "none"
    else:
        k = min(int(round(max(confidence, 0.0) / BIN_WIDTH, 9)), round(1 / BIN_WIDTH) - 1)  # 0.6 / 0.2 < 3
        band = f"{k * BIN_WIDTH:.1f}-{(k + 1) * BIN_WIDTH:.1f}"
    return f"{stream}|{'night' if night else 'day'}|{band}"


def frame_hash(frame_id: str) -> float:
    """A frame id's place in [0, 1): the order in which a stratum's frames are chosen."""
    return int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "big") / 2**64


@dataclass
class Audits:
    """The audit of one store: choosing audit frames and reading what people decided on them."""

    manifest: Manifest
    root: Path
    fraction: float
    infrared_max_saturation: float = 12.0

    refresh_s: float = 60.0  # ``refresh`` selects again at most this often (at once while a backlog is left)
    batch_frames: int = 2000  # frames ``refresh`` classifies per call (each one's image is read once)

    def __post_init__(self) -> None:
        ensure_schema(self.manifest)
        self._selected_at = -math.inf
        self.backlog = self.fraction > 0  # frames may wait to be classified (a store audited for the first time)

    def refresh(self) -> int:
        """``select`` up to ``batch_frames`` new frames when the fraction is above 0 and a backlog is left or the
        last selection is older than ``refresh_s``. Runs in the daemon's housekeeping (``streamlabel review``:
        a thread at start), never in a page request: a first selection on a large store reads every image."""
        due = self.backlog or time.monotonic() - self._selected_at >= self.refresh_s
        if self.fraction <= 0 or not due:
            return 0
        self._selected_at = time.monotonic()
        return self.select(self.batch_frames)

    def catch_up(self) -> bool:
        """``refresh``; True while frames are left to classify (the daemon's housekeeping calls it again at once)."""
        self.refresh()
        return self.backlog

    def select(self, max_frames: int | None = None) -> int:
        """Consider frames not considered yet (at most ``max_frames``; None: all) and choose audit frames per
        stratum; returns how many were chosen."""
        self.backlog = self._classify(max_frames)
        strata: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for frame_id, stratum, chosen in self.manifest.query("SELECT frame_id, stratum, chosen FROM audits"):
            if stratum != UNREADABLE:
                strata[stratum].append((frame_id, int(chosen)))
        picked = []
        for members in strata.values():
            want = math.ceil(self.fraction * len(members)) - sum(c for _, c in members)
            fresh = sorted((m for m, c in members if not c), key=frame_hash)
            picked += fresh[: max(want, 0)]
        if picked:
            with self.manifest.transaction() as db:
                db.executemany(
                    "UPDATE audits SET chosen = 1, time = ? WHERE frame_id = ?", [(utc_now(), f) for f in picked]
                )
            log.info("audit: chose %d more frame(s) of %s (fraction %s)", len(picked), self.root, self.fraction)
        return len(picked)

    def _classify(self, max_frames: int | None = None) -> bool:
        """Give stored frames with parts and an image, not considered yet, their stratum (reads each image once);
        at most ``max_frames``. Returns whether frames are left (the limit was reached)."""
        limit = -1 if max_frames is None else max_frames  # SQLite: a negative LIMIT is no limit
        rows = self.manifest.query(
            "SELECT f.frame_id, f.stream, coalesce(f.hold_image, f.image) AS image, min(l.verdict_confidence) AS conf "
            "FROM frames f JOIN labels l ON l.frame_id = f.frame_id "
            "WHERE coalesce(f.hold_image, f.image) IS NOT NULL "
            "AND f.frame_id NOT IN (SELECT frame_id FROM audits) GROUP BY f.frame_id ORDER BY f.frame_id LIMIT ?",
            (limit,),
        )
        now, fresh = utc_now(), []
        for row in rows:
            image = cv2.imread(str(self.root / row["image"]), cv2.IMREAD_REDUCED_COLOR_4)
            if image is None:  # recorded, so that the next batch moves on; never chosen
                log.warning("audit: %s is not a readable image; frame %s left out", row["image"], row["frame_id"])
                fresh.append((row["frame_id"], UNREADABLE, 0, now))
                continue
            night = is_infrared(image, self.infrared_max_saturation)  # saturation ignores the channel order
            fresh.append((row["frame_id"], stratum_of(row["stream"], night, row["conf"]), 0, now))
        with self.manifest.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO audits (frame_id, stratum, chosen, time) VALUES (?, ?, ?, ?)", fresh)
        return max_frames is not None and len(rows) >= max_frames

    def is_audit(self, frame_id: str) -> bool:
        """Whether ``frame_id`` is an audit frame."""
        return bool(self.manifest.query("SELECT 1 FROM audits WHERE frame_id = ? AND chosen = 1", (frame_id,)))

    def progress(self) -> dict[str, dict[str, int]]:
        """Per stratum: frames considered, chosen, and done (every part decided)."""
        rows = self.manifest.query(
            f"WITH live AS ({LIVE_DECISIONS}) "
            "SELECT a.stratum, count(*) AS frames, sum(a.chosen) AS chosen, "
            "sum(a.chosen AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.frame_id = a.frame_id "
            f"AND NOT {WITHDRAWN} AND l.id NOT IN (SELECT label_id FROM live))) AS done "
            "FROM audits a GROUP BY a.stratum ORDER BY a.stratum"
        )
        return {r["stratum"]: {"frames": r["frames"], "chosen": r["chosen"], "done": r["done"]} for r in rows}

    def outcomes(self) -> dict[str, list[dict[str, Any]]]:
        """Decided parts as ``{"audit": [...], "review": [...]}``: the parts of done audit frames, and the parts
        decided elsewhere (ordinary review items, a biased sample). Each part: its pipeline status, confidence,
        the person's decision and whether it says the label is right (``truth``)."""
        rows = self.manifest.query(
            f"WITH live AS ({LIVE_DECISIONS}), pipe(id, frame_id, conf, status) AS ({PIPELINE_STATUS}), "
            "open_audit AS (SELECT a.frame_id FROM audits a JOIN labels l ON l.frame_id = a.frame_id "
            f"LEFT JOIN live ON live.label_id = l.id WHERE a.chosen = 1 AND live.label_id IS NULL AND NOT {WITHDRAWN}) "
            "SELECT p.id, p.frame_id, p.conf, p.status, live.decision, "
            "EXISTS (SELECT 1 FROM audits a WHERE a.frame_id = p.frame_id AND a.chosen = 1) AS audit, "
            "p.frame_id IN (SELECT frame_id FROM open_audit) AS open "
            "FROM pipe p JOIN live ON live.label_id = p.id ORDER BY p.id"
        )
        out: dict[str, list[dict[str, Any]]] = {"audit": [], "review": []}
        for r in rows:
            if r["audit"] and r["open"]:
                continue  # an audit frame not finished yet: counted once it is
            part = {
                "label_id": r["id"],
                "frame_id": r["frame_id"],
                "confidence": r["conf"],
                "pipeline": r["status"],
                "decision": r["decision"],
                "truth": r["decision"] in POSITIVE,
            }
            out["audit" if r["audit"] else "review"].append(part)
        return out

    def dataset_counts(self) -> dict[str, int]:
        """Accepted parts in the store: accepted by a person, and accepted by the pipeline only."""
        rows = self.manifest.query(
            f"WITH live AS ({LIVE_DECISIONS}) SELECT count(live.label_id) AS people, count(*) AS total "
            "FROM labels l LEFT JOIN live ON live.label_id = l.id WHERE l.status = 'accepted'"
        )
        people, total = int(rows[0]["people"]), int(rows[0]["total"])
        return {"by_people": people, "by_pipeline": total - people}
