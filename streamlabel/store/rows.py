"""Label rows of the manifest built from a FrameResult, and the bytes of a frame's files.

Kept apart from ``dataset.py`` so that the write path and the re-render path (pending retry, a person's
decision) build their files from the same rows with the same code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from streamlabel.frames import (
    ANCHOR_INDEX_KEY,
    DISAGREEMENT_KEY,
    FLAGGED_KEY,
    POLYGON_KEY,
    REJECTION_KEY,
    SOURCE_KEY,
    STUDENT_SOURCE,
    VERDICT_KEY,
    FrameResult,
)
from streamlabel.stages.base import Verdict
from streamlabel.stages.polygon import polygon_to_yolo_line
from streamlabel.store.layout import PartState


def label_row(result: FrameResult, j: int, class_name: str) -> dict[str, Any]:
    """The manifest row of part ``j`` (``idx`` and ``hold_idx`` are set when the copies are laid out)."""
    parts, f = result.parts, result.frame
    a = int(parts.data[ANCHOR_INDEX_KEY][j])
    anchor_names = result.anchors.data.get("class_name", [""] * len(result.anchors))
    poly = np.asarray(parts.data[POLYGON_KEY][j], dtype=np.float64) / [f.width, f.height]
    verdict: Verdict | None = parts.data[VERDICT_KEY][j]
    flagged = parts.data.get(FLAGGED_KEY)
    rejection = parts.data.get(REJECTION_KEY)
    row: dict[str, Any] = {
        "idx": -1,
        "hold_idx": -1,
        "class_id": 0,
        "class_name": class_name,
        "status": result.statuses()[j],
        "xyxy": json.dumps(np.round(parts.xyxy[j], 2).tolist()),
        "anchor_xyxy": json.dumps(np.round(result.anchors.xyxy[a], 2).tolist()),
        "anchor_class": str(anchor_names[a]),
        "score": _opt_float(parts.confidence, j),
        "mask_score": _opt_float(parts.data.get("mask_score"), j),
        "polygon": json.dumps(np.round(poly, 6).tolist()),
        "track_id": _track_id(parts.tracker_id, j),
        "flagged": int(bool(flagged[j])) if flagged is not None else 0,
        "rejection": str(rejection[j] or "") if rejection is not None else "",
        "disagreement": _opt_float(parts.data.get(DISAGREEMENT_KEY), j, nan_is_none=True),
    }
    if verdict is not None:
        row |= verdict_columns(verdict)
    elif SOURCE_KEY in parts.data and parts.data[SOURCE_KEY][j] == STUDENT_SOURCE:
        row |= {"verdict_source": STUDENT_SOURCE, "verdict_reason": _STUDENT_REASON.format(row["disagreement"] or 0)}
    return row


# What the review page shows for a part only the student found (no verdict: a person decides).
_STUDENT_REASON = "found by the student only (confidence {:.2f}), not by the pipeline; nobody has judged it yet"


def verdict_columns(verdict: Verdict) -> dict[str, Any]:
    """The ``verdict_*`` columns of a label row."""
    return {
        "verdict_passed": int(verdict.passed),
        "verdict_confidence": verdict.confidence,
        "verdict_source": verdict.confidence_source,
        "verdict_checks": json.dumps(verdict.checks),
        "verdict_check_probs": json.dumps(getattr(verdict, "check_probs", {}) or {}),
        "verdict_reason": verdict.reason,
        "verdict_model": verdict.model,
        "verdict_raw": verdict.raw,
        "verdict_reused": int(verdict.reused),
    }


def part_states(rows: Sequence[dict[str, Any]]) -> list[PartState]:
    """The layout's view of label rows."""
    return [PartState(str(r["status"]), bool(r.get("flagged")), str(r.get("rejection") or "")) for r in rows]


def pixel_polygon(row: dict[str, Any], width: int, height: int) -> np.ndarray:
    """The row's polygon in frame pixels."""
    return np.asarray(json.loads(row["polygon"]), dtype=np.float64).reshape(-1, 2) * [width, height]


def label_text(rows: Sequence[dict[str, Any]], width: int, height: int) -> bytes:
    """A YOLO-seg label file holding ``rows`` in order (empty file for none)."""
    lines = [polygon_to_yolo_line(int(r["class_id"]), pixel_polygon(r, width, height), width, height) for r in rows]
    return ("\n".join(lines) + "\n" if lines else "").encode()


def encode_jpeg(image_rgb: np.ndarray, quality: int, what: str) -> bytes:
    """JPEG bytes of an RGB image; raises RuntimeError naming ``what`` when OpenCV cannot encode it."""
    ok, jpg = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {what} ({image_rgb.shape}, {image_rgb.dtype})")
    return jpg.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The RGB image of JPEG bytes, or None when they do not decode."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else bgr[..., ::-1].copy()


def _opt_float(values: Any, j: int, nan_is_none: bool = False) -> float | None:
    value = None if values is None else float(values[j])
    return None if nan_is_none and value is not None and np.isnan(value) else value


def _track_id(tracker_ids: np.ndarray | None, row: int) -> int | None:
    """The part's track, or None without tracking or while its track is not confirmed (the tracker's -1)."""
    if tracker_ids is None:
        return None
    value = int(tracker_ids[row])
    return value if value >= 0 else None
