"""DatasetStore: writes labeled frames as images + YOLO-seg labels + manifest rows, atomically.

Layout (ARCHITECTURE.md): ``images/<stream>/<YYYY-MM-DD>/<frame_id>.jpg`` with its label at the same place under
``labels/``; frames that need a person go under ``review/``, kept rejections under ``rejected/``, and frames whose
validation is pending under ``pending/``, each with the same images/labels split. ``data.yaml`` makes the store
an Ultralytics dataset.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from streamlabel.events.frames import frame_events
from streamlabel.frames import FrameResult, LabelStatus
from streamlabel.stages.base import Verdict
from streamlabel.stages.polygon import polygon_to_yolo_line
from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

# Sub-folder of the store root per frame destination ("" is the dataset itself).
SPLIT_ROOTS = {"dataset": "", "review": "review", "rejected": "rejected", "pending": "pending"}
# Hidden file beside data.yaml naming the files of the frame being written (crash recovery).
INTENT_FILE = ".writing.json"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_relpaths(stream: str, day: str, frame_id: str, split: str) -> tuple[str, str]:
    """Image and label paths of a frame in ``split``, relative to the store root (the layout of ARCHITECTURE.md)."""
    sub = Path(SPLIT_ROOTS[split]) if SPLIT_ROOTS[split] else Path()
    rel = Path(stream) / day / frame_id
    return str(sub / "images" / rel.with_suffix(".jpg")), str(sub / "labels" / rel.with_suffix(".txt"))


def frame_split(statuses: list[str]) -> str | None:
    """Where a frame goes, from its parts' statuses; None when nothing is kept.

    Pending wins (nothing may be lost while the validator is away), then review (a person must see the frame
    whole), then the dataset when at least one part was accepted; a frame of rejections only is not kept.
    """
    if LabelStatus.PENDING in statuses:
        return "pending"
    if LabelStatus.REVIEW in statuses:
        return "review"
    if LabelStatus.ACCEPTED in statuses:
        return "dataset"
    if LabelStatus.REJECTED in statuses:
        return "rejected"
    return None


@dataclass(frozen=True)
class StoredFrame:
    """What the store wrote for one frame."""

    frame_id: str
    split: str
    image: Path | None
    label: Path | None
    labels: int
    event_ids: tuple[str, ...] = ()


class DatasetStore:
    """The dataset folder; one instance per process, safe to call from one sink thread.

    Each stored frame's events (label for the dataset, review for the review queue, rejected when
    ``publish_rejected``) enter the outbox in the same transaction as its rows. Opening a store first undoes a
    write that a crash cut short (files written, manifest transaction not committed).
    """

    def __init__(
        self,
        root: Path,
        class_names: list[str],
        jpeg_quality: int = 95,
        keep_rejected: bool = False,
        publish_rejected: bool = False,
    ) -> None:
        self.root = root
        self.class_names = class_names
        self.jpeg_quality = jpeg_quality
        self.keep_rejected = keep_rejected
        self.publish_rejected = publish_rejected
        root.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(root / "manifest.sqlite")
        self.written: Counter[str] = Counter()
        self.recovered = self._recover()
        self._write_data_yaml()

    @property
    def _intent(self) -> Path:
        """Names the files of the write in progress, until its manifest transaction commits."""
        return self.root / INTENT_FILE

    def _recover(self) -> list[str]:
        """Remove the files of a write that never committed; returns their paths relative to the store."""
        if not self._intent.is_file():
            return []
        try:
            intent = json.loads(self._intent.read_text())
        except ValueError:  # torn before its rename: nothing of that write reached the store
            intent = {"frame_id": None, "files": []}
        removed: list[str] = []
        known = self.manifest.query("SELECT 1 FROM frames WHERE frame_id = ?", (intent["frame_id"],))
        for rel in intent["files"]:
            path = self.root / rel
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            if not known and path.is_file():
                path.unlink()
                removed.append(rel)
        if removed:
            log.warning("removed %d file(s) of a write cut short by a crash: %s", len(removed), ", ".join(removed))
        self._intent.unlink(missing_ok=True)
        return removed

    def _write_data_yaml(self) -> None:
        data = {
            "path": str(self.root.resolve()),
            "train": "images",
            "val": "images",
            "names": dict(enumerate(self.class_names)),
        }
        text = "# Ultralytics dataset file written by streamlabel: yolo segment train data=<this file>\n"
        atomic_write(self.root / "data.yaml", (text + yaml.safe_dump(data, sort_keys=False)).encode())

    def relpaths(self, result: FrameResult, split: str) -> tuple[str, str]:
        """Image and label paths of a frame, relative to the store root."""
        f = result.frame
        return split_relpaths(f.stream, f"{f.time:%Y-%m-%d}", f.frame_id, split)

    def write(self, result: FrameResult, config_hash: str) -> StoredFrame | None:
        """Store one frame's result: files first (atomically), then its manifest rows in one transaction."""
        statuses = result.statuses()
        split = frame_split(statuses)
        if split is None:
            return None
        keep_files = split != "rejected" or self.keep_rejected
        image_rel, label_rel = self.relpaths(result, split)
        f = result.frame
        in_file = self._rows_in_file(statuses, split)
        lines, rows = [], []
        for j, status in enumerate(statuses):
            idx = -1
            if j in in_file:
                idx = len(lines)
                lines.append(polygon_to_yolo_line(0, result.parts.data["polygon"][j], f.width, f.height))
            rows.append(self._label_row(result, j, status, idx))
        frame_row = {
            "frame_id": f.frame_id,
            "stream": f.stream,
            "seq": f.seq,
            "pts": f.pts,
            "time": f.time.isoformat(),
            "width": f.width,
            "height": f.height,
            "split": split,
            "image": image_rel if keep_files else None,
            "label": label_rel if keep_files else None,
            "config_hash": config_hash,
        }
        events = frame_events(frame_row, rows, self.publish_rejected)
        try:
            if keep_files:
                self._write_files(result, image_rel, label_rel, lines)
            event_ids = self.manifest.insert_frame(frame_row, rows, events)
        except BaseException:
            self._recover()
            raise
        if keep_files:
            self._intent.unlink(missing_ok=True)
        self.written[split] += 1
        return StoredFrame(
            f.frame_id,
            split,
            self.root / image_rel if keep_files else None,
            self.root / label_rel if keep_files else None,
            len(lines),
            tuple(event_ids),
        )

    def _write_files(self, result: FrameResult, image_rel: str, label_rel: str, lines: list[str]) -> None:
        """Name the files in the intent, then write the image and the label file atomically."""
        f = result.frame
        atomic_write(self._intent, json.dumps({"frame_id": f.frame_id, "files": [image_rel, label_rel]}).encode())
        ok, jpg = cv2.imencode(".jpg", f.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {f.frame_id}")
        atomic_write(self.root / image_rel, jpg.tobytes())
        atomic_write(self.root / label_rel, ("\n".join(lines) + "\n" if lines else "").encode())

    @staticmethod
    def _rows_in_file(statuses: list[str], split: str) -> set[int]:
        """Which parts get a line in the frame's label file."""
        wanted = {
            "dataset": {LabelStatus.ACCEPTED},
            "review": {LabelStatus.ACCEPTED, LabelStatus.REVIEW},
            "pending": {LabelStatus.ACCEPTED, LabelStatus.REVIEW, LabelStatus.PENDING},
            "rejected": {LabelStatus.REJECTED},
        }[split]
        return {j for j, s in enumerate(statuses) if s in wanted}

    def _label_row(self, result: FrameResult, j: int, status: str, idx: int) -> dict[str, Any]:
        parts, f = result.parts, result.frame
        a = int(parts.data["anchor_index"][j])
        anchor_names = result.anchors.data.get("class_name", [""] * len(result.anchors))
        poly = np.asarray(parts.data["polygon"][j], dtype=np.float64) / [f.width, f.height]
        verdict: Verdict | None = parts.data["verdict"][j]
        row: dict[str, Any] = {
            "idx": idx,
            "class_id": 0,
            "class_name": self.class_names[0],
            "status": status,
            "xyxy": json.dumps(np.round(parts.xyxy[j], 2).tolist()),
            "anchor_xyxy": json.dumps(np.round(result.anchors.xyxy[a], 2).tolist()),
            "anchor_class": str(anchor_names[a]),
            "score": _opt_float(parts.confidence, j),
            "mask_score": _opt_float(parts.data.get("mask_score"), j),
            "polygon": json.dumps(np.round(poly, 6).tolist()),
            "track_id": _track_id(parts.tracker_id, j),
        }
        if verdict is not None:
            row |= verdict_columns(verdict)
        return row

    def close(self) -> None:
        self.manifest.close()


def verdict_columns(verdict: Verdict) -> dict[str, Any]:
    """The ``verdict_*`` columns of a label row."""
    return {
        "verdict_passed": int(verdict.passed),
        "verdict_confidence": verdict.confidence,
        "verdict_source": verdict.confidence_source,
        "verdict_checks": json.dumps(verdict.checks),
        "verdict_reason": verdict.reason,
        "verdict_model": verdict.model,
        "verdict_raw": verdict.raw,
        "verdict_reused": int(verdict.reused),
    }


def _opt_float(values: Any, j: int) -> float | None:
    return None if values is None else float(values[j])


def _track_id(tracker_ids: np.ndarray | None, row: int) -> int | None:
    """The part's track, or None without tracking or while its track is not confirmed (the tracker's -1)."""
    if tracker_ids is None:
        return None
    value = int(tracker_ids[row])
    return value if value >= 0 else None
