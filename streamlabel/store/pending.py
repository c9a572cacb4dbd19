"""Judging pending frames again: candidates stored while the validator was unreachable are never passed or dropped.

``PendingRetry.retry_once()`` takes the oldest frames with a pending copy (``frames.split`` or ``frames.hold``
is ``pending``), rebuilds each pending candidate from the unpainted copy and its polygon, asks the validator,
and lays the frame out again where its new statuses send it (``DatasetStore.render_dataset_copy``) with its
events, exactly as if it had been judged the first time. A flagged mask is never accepted: a passing verdict
sends it to review. While the validator is still away nothing changes.

Crash safety is the store's: new files are staged under its intent, the rows and events change in one
transaction, then the files are swapped in (``staging.Staging``). A frame whose unpainted copy is missing or
unreadable cannot be judged: its waiting parts are rejected with that reason (logged once, as it leaves pending)
and the round goes on with the next frame.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config.target import CheckConfig, rejection_of
from streamlabel.frames import LabelStatus, Rejection, verdict_status
from streamlabel.stages.base import Candidate, ModelUnavailableError, Validator, ValidatorUnavailableError, Verdict
from streamlabel.stages.polygon import polygon_to_mask
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.layout import SPLIT_ROOTS
from streamlabel.store.rows import decode_jpeg, verdict_columns

log = logging.getLogger(__name__)

BATCH = 16  # pending frames judged per round; the validator's own concurrency applies inside a round
_WAITING = "SELECT * FROM frames WHERE split = 'pending' OR hold = 'pending'"


@dataclass
class RetryReport:
    """What one round did."""

    judged: int = 0
    moved: Counter[str] = field(default_factory=Counter)  # frames per split they moved to
    still_pending: int = 0
    unavailable: str | None = None
    unreadable: int = 0  # frames whose unpainted copy could not be read: their waiting parts were rejected


class PendingRetry:
    """Re-validates pending frames of one store with one validator and the checklist it judges."""

    def __init__(
        self,
        store: DatasetStore,
        validator: Validator,
        review_threshold: float,
        part_name: str,
        checks: Sequence[CheckConfig],
    ) -> None:
        self.store = store
        self.validator = validator
        self.review_threshold = review_threshold
        self.part_name = part_name
        self.checks = list(checks)

    def pending_count(self) -> int:
        """Frames waiting for a verdict."""
        return int(self.store.manifest.query(_WAITING.replace("*", "COUNT(*)"))[0][0])

    def retry_once(self, limit: int = BATCH) -> RetryReport:
        """Judge up to ``limit`` of the oldest pending frames; stop at the first sign the validator is away."""
        report = RetryReport()
        rows = self.store.manifest.query(f"{_WAITING} ORDER BY time, frame_id LIMIT ?", (limit,))
        for frame in rows:
            try:
                self._retry_frame(dict(frame), report)
            except (ValidatorUnavailableError, ModelUnavailableError) as exc:
                report.unavailable = str(exc)
                break
            except FileNotFoundError as exc:
                log.warning(
                    "pending frame %s cannot be judged: %s; its waiting parts are rejected", frame["frame_id"], exc
                )
                stored = self.store.drop_copies(frame["frame_id"], f"not judged: {exc}")
                report.unreadable += 1
                report.moved[stored.split] += 1
        report.still_pending = self.pending_count()
        return report

    def sweep(self) -> list[str]:
        """Remove files under pending/ that no frame names (left by a crash of a version without staging)."""
        root = self.store.root / SPLIT_ROOTS["pending"]
        if not root.is_dir():
            return []
        known = {
            p
            for r in self.store.manifest.query(_WAITING)
            for p in (r["image"], r["label"], r["hold_image"], r["hold_label"])
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
        labels = self.store.manifest.labels_of(frame["frame_id"])
        image = self._load_image(frame, labels)
        todo = [r for r in labels if r["status"] == LabelStatus.PENDING]
        verdicts = self.validator.validate([self._candidate(image, frame, r) for r in todo])
        updates = {r["id"]: self._judged(r, v) for r, v in zip(todo, verdicts, strict=True)}
        stored = self.store.render_dataset_copy(frame["frame_id"], updates, publish=True)
        report.judged += 1
        report.moved[stored.split] += 1

    def _judged(self, row: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
        """A label row's new columns from its verdict: a flagged mask is never accepted."""
        status = verdict_status(verdict, self.review_threshold)
        if status == LabelStatus.ACCEPTED and row.get("flagged"):
            status = LabelStatus.REVIEW
        rejection = ""
        if status == LabelStatus.REJECTED:
            rejection = rejection_of(verdict.failed_checks(), self.checks) or str(Rejection.POOR_LABEL)
        return verdict_columns(verdict) | {"status": str(status), "rejection": rejection}

    def _load_image(self, frame: dict[str, Any], labels: list[dict[str, Any]]) -> np.ndarray:
        rel = self.store.unpainted_copy(frame, labels)
        image = decode_jpeg((self.store.root / rel).read_bytes())
        if image is None:
            raise FileNotFoundError(f"{self.store.root / rel} is not a readable JPEG")
        return image

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
