"""The review queue, read from the manifest: parts waiting for a person, most uncertain first, fast at 100,000.

Order: the student's disagreement score (highest first; NULL and 0 alike last), then the distance of the verdict
confidence from the review threshold, then unjudged (NULL) last, then row id. Without a stream or day filter the
page is merged from range scans per status on the index ``labels(status, disagreement, verdict_confidence)``
(store/queue_order.py), so a page costs what it shows, not what the queue holds; with a stream or day filter
(selective, on ``frames(stream, time)``) SQLite sorts the few matching rows itself. ``streamlabel bench review``
measures both (docs/review.md).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streamlabel.frames import LabelStatus
from streamlabel.store.audit import WITHDRAWN
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.queue_order import DISAGREES, QueueOrder

# The statuses a person may decide on from the queue.
OPEN_STATUSES = (LabelStatus.REVIEW, LabelStatus.PENDING)
STREAMS_TTL_S = 10.0
ALL_STATUSES = tuple(str(s) for s in LabelStatus)
# A part of an audit frame that has no live decision yet (the audits table: store/audit.py).
AUDIT_OPEN = (
    "l.frame_id IN (SELECT frame_id FROM audits WHERE chosen = 1) AND NOT EXISTS (SELECT 1 FROM reviews r "
    f"WHERE r.label_id = l.id AND r.decision != 'undo' AND r.undone_by IS NULL) AND NOT {WITHDRAWN}"
)


class ReviewError(Exception):
    """A decision that cannot be applied; the message says why and what to do."""


class UnknownItem(ReviewError, KeyError):
    """No part with that id in the manifest."""

    def __str__(self) -> str:  # KeyError quotes its message
        return str(self.args[0])


class ReviewConflict(ReviewError):
    """The part changed since the person saw it (another tab, a double submit, the daemon)."""


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows; every field narrows it (None / empty: no restriction)."""

    statuses: tuple[str, ...] = tuple(str(s) for s in OPEN_STATUSES)
    stream: str | None = None
    failed_check: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    day: str | None = None  # YYYY-MM-DD (UTC)
    audit: bool = False  # only undecided parts of audit frames (store/audit.py), whatever their status
    disagrees: bool = False  # only parts the student disagrees on (labels.disagreement > 0; docs/student.md)

    @property
    def needs_frames(self) -> bool:
        """Whether the filter reads the frames table (stream, day) or the few audit items: then SQLite sorts the
        matching rows itself."""
        return bool(self.stream or self.day or self.audit)

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters (on ``labels l`` joined with ``frames f``)."""
        marks = ", ".join("?" for _ in self.statuses) or "NULL"
        cond, params = [f"l.status IN ({marks})"], list(self.statuses)
        if self.stream:
            cond.append("f.stream = ?")
            params.append(self.stream)
        if self.failed_check:
            cond.append("l.verdict_checks LIKE ?")
            params.append(f"%{json.dumps(self.failed_check)}: false%")
        if self.min_confidence is not None:
            cond.append("l.verdict_confidence >= ?")
            params.append(self.min_confidence)
        if self.max_confidence is not None:
            cond.append("l.verdict_confidence <= ?")
            params.append(self.max_confidence)
        if self.day:
            cond.append("f.time >= ? AND f.time < ?")
            params += [self.day, self.day + "\uffff"]
        if self.audit:
            cond.append(AUDIT_OPEN)
        if self.disagrees:
            cond.append(DISAGREES)
        return " AND ".join(cond), params


@dataclass
class ReviewItem:
    """One part as the review page shows it: its label row joined with its frame row."""

    row: dict[str, Any]
    checks: dict[str, bool] = field(default_factory=dict)
    check_probs: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, row: sqlite3.Row | dict[str, Any]) -> ReviewItem:
        data = dict(row)
        return cls(
            data, json.loads(data.get("verdict_checks") or "{}"), json.loads(data.get("verdict_check_probs") or "{}")
        )

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["row"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]


_ITEM_COLUMNS = (
    "l.id, l.frame_id, l.status, l.rejection, l.flagged, l.xyxy, l.anchor_xyxy, l.anchor_class, l.polygon, "
    "l.score, l.mask_score, l.verdict_passed, l.verdict_confidence, l.verdict_checks, l.verdict_check_probs, "
    "l.verdict_reason, l.verdict_model, l.verdict_source, l.disagreement, l.track_id, l.class_name, "
    "f.stream, f.seq, f.time, f.width, f.height, "
    "f.split, f.hold, f.rev"
)


class ReviewQueue:
    """Read access to the queue of one store (``Reviews`` adds the decisions)."""

    def __init__(self, store: DatasetStore, review_threshold: float = 0.8) -> None:
        self.store = store
        self.manifest = store.manifest
        self.review_threshold = review_threshold
        self._streams: tuple[float, list[str]] = (0.0, [])

    def queue(self, where: QueueFilter, limit: int, offset: int = 0) -> tuple[list[ReviewItem], int]:
        """One page of the queue, most uncertain first, and how many items match."""
        cond, params = where.where()
        join = "" if not where.needs_frames else "JOIN frames f ON f.frame_id = l.frame_id"
        total = int(self.manifest.query(f"SELECT COUNT(*) FROM labels l {join} WHERE {cond}", tuple(params))[0][0])
        if where.needs_frames:
            rows = self.manifest.query(
                f"SELECT {_ITEM_COLUMNS} FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE {cond} "
                f"ORDER BY {_ORDER} LIMIT ? OFFSET ?",
                (*params, self.review_threshold, limit, offset),
            )
            return [ReviewItem.of(r) for r in rows], total
        ids = [key[-1] for key in QueueOrder(self.manifest, self.review_threshold).first(where, offset + limit)][
            offset:
        ]
        return self._items(ids), total

    def _items(self, ids: list[int]) -> list[ReviewItem]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self.manifest.query(
            f"SELECT {_ITEM_COLUMNS} FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE l.id IN ({marks})",
            tuple(ids),
        )
        by_id = {int(r["id"]): ReviewItem.of(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def neighbours(self, where: QueueFilter, label_id: int, probe: int = 50) -> tuple[int | None, int | None]:
        """The items before and after ``label_id`` in the queue's order (None at an end or when it is not in it).

        Reads ``probe`` rows per status on each side of the item inside its group (its disagreement score, or the
        rest), then the end of the neighbouring group; more items than that tied at one confidence may hide one.
        """
        if where.needs_frames:
            return self._neighbours_sorted(where, label_id)
        rows = self.manifest.query(
            "SELECT id, verdict_confidence, status, disagreement FROM labels WHERE id = ?", (label_id,)
        )
        if not rows or rows[0]["status"] not in where.statuses:
            return None, None
        if where.disagrees and not (rows[0]["disagreement"] or 0) > 0:
            return None, None
        return QueueOrder(self.manifest, self.review_threshold).neighbours(where, rows[0], probe)

    def _neighbours_sorted(self, where: QueueFilter, label_id: int) -> tuple[int | None, int | None]:
        """Neighbours when SQLite sorts the (selective) filtered rows itself."""
        cond, params = where.where()
        rows = self.manifest.query(
            f"WITH q AS (SELECT l.id, row_number() OVER (ORDER BY {_ORDER}) AS n FROM labels l "
            f"JOIN frames f ON f.frame_id = l.frame_id WHERE {cond}) "
            "SELECT (SELECT id FROM q WHERE n = me.n - 1), (SELECT id FROM q WHERE n = me.n + 1) "
            "FROM q me WHERE id = ?",
            (self.review_threshold, *params, label_id),
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def item(self, label_id: int) -> ReviewItem:
        """The part ``label_id``; raises UnknownItem."""
        rows = self.manifest.query(
            f"SELECT {_ITEM_COLUMNS} FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE l.id = ?",
            (label_id,),
        )
        if not rows:
            raise UnknownItem(
                f"item {label_id} is not in the manifest of {self.store.root} (decided and pruned, or "
                "a stale link); go back to the queue"
            )
        return ReviewItem.of(rows[0])

    def frame_parts(self, frame_id: str) -> list[ReviewItem]:
        """Every part of one frame (the item view draws them all)."""
        rows = self.manifest.query(
            f"SELECT {_ITEM_COLUMNS} FROM labels l JOIN frames f ON f.frame_id = l.frame_id WHERE l.frame_id = ? "
            "ORDER BY l.id",
            (frame_id,),
        )
        return [ReviewItem.of(r) for r in rows]

    def track(self, item: ReviewItem, around: int = 3) -> list[ReviewItem]:
        """Parts of the same track and stream nearest in time (``around`` before and after), oldest first.

        Only frames whose image is kept (a rejection without ``store.keep_rejected`` has none).
        """
        if item.track_id is None:
            return []
        base = (
            f"SELECT {_ITEM_COLUMNS} FROM labels l JOIN frames f ON f.frame_id = l.frame_id "
            "WHERE f.stream = ? AND l.track_id = ? AND f.time {op} ? AND coalesce(f.image, f.hold_image) IS NOT NULL "
            "ORDER BY f.time {order} LIMIT ?"
        )
        args = (item.stream, item.track_id, item.time, around)
        before = self.manifest.query(base.format(op="<", order="DESC"), args)
        after = self.manifest.query(base.format(op=">", order="ASC"), args)
        return [ReviewItem.of(r) for r in [*reversed(before), *after]]

    def history(self, label_id: int) -> list[dict[str, Any]]:
        """The decisions on one part, newest first."""
        return [
            dict(r)
            for r in self.manifest.query("SELECT * FROM reviews WHERE label_id = ? ORDER BY id DESC", (label_id,))
        ]

    def streams(self) -> list[str]:
        """Stream names that have frames (for the filter; cached for ``STREAMS_TTL_S``)."""
        when, names = self._streams
        if time.monotonic() - when > STREAMS_TTL_S:
            names = [r[0] for r in self.manifest.query("SELECT DISTINCT stream FROM frames ORDER BY stream")]
            self._streams = (time.monotonic(), names)
        return names

    def live(
        self, window_s: float = 3600.0, rate_window_s: float = 600.0, streams: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Per stream (those with frames, and ``streams``): its newest frame that kept an image and has a part,
        what it stored in the last ``window_s`` seconds (frames, and parts per status), and its rates over the
        last ``rate_window_s`` (frames and accepted parts stored per minute, by capture time); for the live view."""
        now = datetime.now(UTC)
        since = (now - timedelta(seconds=window_s)).isoformat()
        recent = (now - timedelta(seconds=rate_window_s)).isoformat()
        out = []
        for stream in sorted({*self.streams(), *(streams or [])}):
            latest = self.manifest.query(
                "SELECT l.id, f.frame_id, f.time FROM frames f JOIN labels l ON l.frame_id = f.frame_id "
                "WHERE f.stream = ? AND coalesce(f.image, f.hold_image) IS NOT NULL ORDER BY f.time DESC LIMIT 1",
                (stream,),
            )
            parts = self.manifest.query(
                "SELECT l.status, COUNT(*) AS n FROM frames f JOIN labels l ON l.frame_id = f.frame_id "
                "WHERE f.stream = ? AND f.time >= ? GROUP BY l.status",
                (stream, since),
            )
            frames = self.manifest.query("SELECT COUNT(*) FROM frames WHERE stream = ? AND time >= ?", (stream, since))
            rates = self.manifest.query(
                "SELECT COUNT(DISTINCT f.frame_id), COUNT(l.id) FILTER (WHERE l.status = 'accepted') FROM frames f "
                "LEFT JOIN labels l ON l.frame_id = f.frame_id WHERE f.stream = ? AND f.time >= ?",
                (stream, recent),
            )
            minutes = rate_window_s / 60
            out.append(
                {
                    "stream": stream,
                    "latest": dict(latest[0]) if latest else None,
                    "parts": {r["status"]: int(r["n"]) for r in parts},
                    "frames": int(frames[0][0]),
                    "frames_per_min": int(rates[0][0]) / minutes,
                    "accepted_per_min": int(rates[0][1]) / minutes,
                    "rate_window_s": rate_window_s,
                }
            )
        return out

    def last_decision(self, who: str) -> int | None:
        """The part of ``who``'s latest decision that can still be undone."""
        rows = self.manifest.query(
            "SELECT label_id FROM reviews WHERE who = ? AND decision != 'undo' AND undone_by IS NULL "
            "ORDER BY id DESC LIMIT 1",
            (who,),
        )
        return int(rows[0][0]) if rows else None


_ORDER = (  # the student's disagreement first (docs/student.md), then the distance from the threshold
    "max(coalesce(l.disagreement, 0), 0) DESC, abs(coalesce(l.verdict_confidence, 0) - ?), "
    "l.verdict_confidence IS NULL, l.id"
)
