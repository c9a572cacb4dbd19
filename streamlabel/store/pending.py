"""Judging pending frames again: candidates stored while the validator was unreachable are never passed or dropped.

``PendingRetry.retry_once()`` takes the oldest pending frames, rebuilds each candidate from the stored image and
polygon, asks the validator, and moves the frame to where its new statuses send it (dataset, review, rejected) with
its events, exactly as if it had been judged the first time. While the validator is still away nothing changes.

Crash safety: the new files are written first (atomically), then the frame's rows and its events change in one
transaction, then the pending files are removed. A crash before the commit leaves the frame pending (retried later,
the new files are rewritten); a crash after it leaves stale pending files that ``sweep()`` removes.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from streamlabel.events.frames import frame_events
from streamlabel.events.outbox import enqueue_event
from streamlabel.frames import LabelStatus, verdict_status
from streamlabel.stages.base import Candidate, ModelUnavailableError, Validator, ValidatorUnavailableError
from streamlabel.stages.polygon import polygon_to_mask, polygon_to_yolo_line
from streamlabel.store.dataset import (
    SPLIT_ROOTS,
    DatasetStore,
    atomic_write,
    frame_split,
    split_relpaths,
    verdict_columns,
)
from streamlabel.store.manifest import _LABEL_COLUMNS

log = logging.getLogger(__name__)

BATCH = 16  # pending frames judged per round; the validator's own concurrency applies inside a round


@dataclass
class RetryReport:
    """What one round did."""

    judged: int = 0
    moved: Counter[str] = field(default_factory=Counter)  # frames per split they moved to
    still_pending: int = 0
    unavailable: str | None = None


class PendingRetry:
    """Re-validates pending frames of one store with one validator."""

    def __init__(self, store: DatasetStore, validator: Validator, review_threshold: float, part_name: str) -> None:
        self.store = store
        self.validator = validator
        self.review_threshold = review_threshold
        self.part_name = part_name

    def pending_count(self) -> int:
        """Frames waiting for a verdict."""
        return int(self.store.manifest.query("SELECT COUNT(*) FROM frames WHERE split = 'pending'")[0][0])

    def retry_once(self, limit: int = BATCH) -> RetryReport:
        """Judge up to ``limit`` of the oldest pending frames; stop at the first sign the validator is away."""
        report = RetryReport()
        rows = self.store.manifest.query(
            "SELECT * FROM frames WHERE split = 'pending' ORDER BY time, frame_id LIMIT ?", (limit,)
        )
        for frame in rows:
            try:
                self._retry_frame(dict(frame), report)
            except (ValidatorUnavailableError, ModelUnavailableError) as exc:
                report.unavailable = str(exc)
                break
        report.still_pending = self.pending_count()
        return report

    def sweep(self) -> list[str]:
        """Remove files under pending/ that no pending frame names (left by a crash after a commit)."""
        root = self.store.root / SPLIT_ROOTS["pending"]
        if not root.is_dir():
            return []
        known = {
            p
            for r in self.store.manifest.query("SELECT image, label FROM frames WHERE split = 'pending'")
            for p in (r["image"], r["label"])
            if p
        }
        removed = []
        for path in root.rglob("*"):
            rel = str(path.relative_to(self.store.root))
            if path.is_file() and path.suffix in (".jpg", ".txt") and rel not in known:
                path.unlink()
                removed.append(rel)
        if removed:
            log.warning("removed %d stale pending file(s) left by an interrupted retry", len(removed))
        return removed

    # ----------------------------------------------------------------------------------------------- one frame

    def _retry_frame(self, frame: dict[str, Any], report: RetryReport) -> None:
        labels = [
            dict(r)
            for r in self.store.manifest.query(
                "SELECT * FROM labels WHERE frame_id = ? ORDER BY id", (frame["frame_id"],)
            )
        ]
        image = self._load_image(frame)
        todo = [i for i, r in enumerate(labels) if r["status"] == LabelStatus.PENDING]
        verdicts = self.validator.validate([self._candidate(image, frame, labels[i]) for i in todo])
        for i, verdict in zip(todo, verdicts, strict=True):
            labels[i] = (
                labels[i] | verdict_columns(verdict) | {"status": str(verdict_status(verdict, self.review_threshold))}
            )
        self._move(frame, labels)
        report.judged += 1
        report.moved[frame["split"]] += 1

    def _load_image(self, frame: dict[str, Any]) -> np.ndarray:
        path = self.store.root / frame["image"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"pending frame {frame['frame_id']}: cannot read {path}")
        return bgr[..., ::-1].copy()

    def _candidate(self, image: np.ndarray, frame: dict[str, Any], row: dict[str, Any]) -> Candidate:
        h, w = frame["height"], frame["width"]
        polygon = np.asarray(json.loads(row["polygon"]), dtype=np.float64) * [w, h]
        part = sv.Detections(
            xyxy=np.asarray([json.loads(row["xyxy"])], dtype=np.float32),
            mask=polygon_to_mask(polygon, h, w)[None],
            class_id=np.array([row["class_id"]]),
        )
        anchor = np.asarray(json.loads(row["anchor_xyxy"]), dtype=np.float32)
        return Candidate(image, part, anchor, row["anchor_class"], self.part_name)

    def _move(self, frame: dict[str, Any], labels: list[dict[str, Any]]) -> None:
        """Write the frame where its new statuses send it, update rows and enqueue events, then drop old files."""
        old = [frame["image"], frame["label"]]
        split = frame_split([r["status"] for r in labels])
        in_file = DatasetStore._rows_in_file([r["status"] for r in labels], split) if split else set()
        lines = []
        for j, row in enumerate(labels):
            row["idx"] = -1
            if j in in_file:
                row["idx"] = len(lines)
                poly = np.asarray(json.loads(row["polygon"]), dtype=np.float64) * [frame["width"], frame["height"]]
                lines.append(polygon_to_yolo_line(row["class_id"], poly, frame["width"], frame["height"]))
        keep = split is not None and (split != "rejected" or self.store.keep_rejected)
        image_rel = label_rel = None
        if keep:
            day = datetime.fromisoformat(frame["time"]).strftime("%Y-%m-%d")
            image_rel, label_rel = split_relpaths(frame["stream"], day, frame["frame_id"], split)
            atomic_write(self.store.root / image_rel, Path(self.store.root / frame["image"]).read_bytes())
            atomic_write(self.store.root / label_rel, ("\n".join(lines) + "\n" if lines else "").encode())
        frame |= {"split": split or "rejected", "image": image_rel, "label": label_rel}
        with self.store.manifest.transaction() as db:
            db.execute(
                "UPDATE frames SET split = ?, image = ?, label = ? WHERE frame_id = ?",
                (frame["split"], image_rel, label_rel, frame["frame_id"]),
            )
            for row in labels:
                db.execute(
                    f"UPDATE labels SET {', '.join(f'{c} = :{c}' for c in _UPDATED)} WHERE id = :id",
                    {c: row.get(c) for c in (*_UPDATED, "id")},
                )
            for event in frame_events(frame, labels, self.store.publish_rejected):
                enqueue_event(db, event, frame_id=frame["frame_id"])
        for rel in old:
            if rel and rel not in (image_rel, label_rel):
                (self.store.root / rel).unlink(missing_ok=True)


# Columns a retry changes: the status, the line in the label file, and the verdict.
_UPDATED = ("status", "idx", *(c for c in _LABEL_COLUMNS if c.startswith("verdict_")))
