"""How much the student and the pipeline disagree on one frame, and the student's finds the pipeline missed as rows.

Scores (docs/student.md):

- a pipeline part: ``1 - IoU`` of its mask with the best-overlapping student mask when that IoU is below
  ``iou_threshold`` (a part the student misses scores 1), else 0 (they agree);
- a student find whose box overlaps no pipeline part by ``match_iou`` (a part the pipeline missed): the student's
  confidence. It becomes a row of its own: status ``review``, no verdict, ``source`` ``student``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.frames import (
    ANCHOR_INDEX_KEY,
    DISAGREEMENT_KEY,
    FLAGGED_KEY,
    POLYGON_KEY,
    REJECTION_KEY,
    SOURCE_KEY,
    STATUS_KEY,
    STUDENT_SOURCE,
    VERDICT_KEY,
    LabelStatus,
)
from streamlabel.stages.polygon import mask_window, polygon_to_mask

PIPELINE_SOURCE = "pipeline"
# The pipeline keeps only parts inside an anchor; a student find with less than this share of its box inside every
# anchor is not a part of the target and is not offered for review.
INSIDE_ANCHOR = 0.5
UNTRACKED = -1  # the tracker's id of a row without a confirmed track (tracking.tracker.UNCONFIRMED)


@dataclass(frozen=True)
class Disagreement:
    """The comparison of one frame: a score per pipeline part, and which student finds the pipeline missed."""

    part_scores: np.ndarray  # (N,) float in [0, 1]
    missed: np.ndarray  # indices into the student's finds
    missed_scores: np.ndarray  # (len(missed),) float in [0, 1]: the student's confidence


def masks_of(found: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool masks of ``found``: its ``mask``, else its polygons rasterized, else its boxes filled."""
    if found.mask is not None:
        return np.asarray(found.mask, dtype=bool)
    out = np.zeros((len(found), *shape), dtype=bool)
    polygons = found.data.get(POLYGON_KEY)
    for j, (x1, y1, x2, y2) in enumerate(np.round(found.xyxy).astype(int)):
        if polygons is not None and len(polygons[j]) >= 3:
            out[j] = polygon_to_mask(polygons[j], *shape)
        else:
            out[j, max(y1, 0) : y2, max(x1, 0) : x2] = True
    return out


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of two stacks of equally sized bool masks; each pair is computed inside the union of the two
    masks' bounding boxes (pairs whose boxes do not meet are 0 without touching a pixel)."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    windows_a, windows_b = [mask_window(m) for m in a], [mask_window(m) for m in b]
    for i, wa in enumerate(windows_a):
        for j, wb in enumerate(windows_b):
            if wa is None or wb is None or not _meet(wa, wb):
                continue
            rows = slice(min(wa[0].start, wb[0].start), max(wa[0].stop, wb[0].stop))
            cols = slice(min(wa[1].start, wb[1].start), max(wa[1].stop, wb[1].stop))
            x, y = a[i][rows, cols], b[j][rows, cols]
            union = np.count_nonzero(x | y)
            out[i, j] = np.count_nonzero(x & y) / union if union else 0.0
    return out


def _meet(wa: tuple[slice, slice], wb: tuple[slice, slice]) -> bool:
    return all(s.start < t.stop and t.start < s.stop for s, t in zip(wa, wb, strict=True))


def score(
    parts: sv.Detections, finds: sv.Detections, shape: tuple[int, int], iou_threshold: float, match_iou: float
) -> Disagreement:
    """Compare one frame's pipeline parts with the student's finds (see the module doc)."""
    n, m = len(parts), len(finds)
    ious = mask_iou_matrix(masks_of(parts, shape), masks_of(finds, shape)) if n and m else np.zeros((n, m))
    best = ious.max(axis=1) if m else np.zeros(n)
    part_scores = np.where(best >= iou_threshold, 0.0, 1.0 - best)
    if n:
        overlap = sv.box_iou_batch(finds.xyxy, parts.xyxy).max(axis=1) if m else np.zeros(0)
        missed = np.flatnonzero(overlap < match_iou)
    else:
        missed = np.arange(m)
    confidence = finds.confidence if finds.confidence is not None else np.ones(m)
    return Disagreement(part_scores, missed, np.asarray(confidence, dtype=np.float64)[missed])


def anchor_of(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Per box, the anchor holding the largest share of it, or -1 when no anchor holds ``INSIDE_ANCHOR`` of it."""
    boxes, anchors = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(anchors, np.float64).reshape(-1, 4)
    if not len(anchors) or not len(boxes):
        return np.full(len(boxes), -1, dtype=int)
    lo = np.maximum(boxes[:, None, :2], anchors[None, :, :2])
    hi = np.minimum(boxes[:, None, 2:], anchors[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 1e-9, None), axis=1)
    share = inter / area[:, None]
    best = share.argmax(axis=1)
    return np.where(share[np.arange(len(boxes)), best] >= INSIDE_ANCHOR, best, -1)


def student_rows(
    parts: sv.Detections, finds: sv.Detections, anchor_index: np.ndarray, scores: np.ndarray, part_name: str
) -> sv.Detections:
    """``finds`` as review rows shaped like ``parts`` (the same fields and data keys, so that they merge): no
    verdict, not flagged, no track, ``source`` student, ``disagreement`` ``scores``, linked to ``anchor_index``."""
    k = len(finds)
    shaped = len(parts) > 0  # an empty frame imposes no shape
    rows = sv.Detections(
        xyxy=finds.xyxy.astype(np.float32),
        mask=finds.mask if (finds.mask is not None and (not shaped or parts.mask is not None)) else None,
        confidence=None if shaped and parts.confidence is None else _confidence(finds),
        class_id=None if shaped and parts.class_id is None else np.zeros(k, dtype=np.int64),
        tracker_id=None if not shaped or parts.tracker_id is None else np.full(k, UNTRACKED, dtype=np.int64),
    )
    for key, values in parts.data.items() if shaped else ():
        rows.data[key] = _blank(np.asarray(values), k)
    if CLASS_NAME_DATA_FIELD in rows.data:
        rows.data[CLASS_NAME_DATA_FIELD] = np.array([part_name] * k)
    rows.data[ANCHOR_INDEX_KEY] = np.asarray(anchor_index, dtype=np.int64)
    rows.data[POLYGON_KEY] = _objects(list(finds.data[POLYGON_KEY]))
    rows.data[STATUS_KEY] = _objects([str(LabelStatus.REVIEW)] * k)
    rows.data[VERDICT_KEY] = _objects([None] * k)
    rows.data[FLAGGED_KEY] = np.zeros(k, dtype=bool)
    rows.data[REJECTION_KEY] = _objects([""] * k)
    rows.data[DISAGREEMENT_KEY] = np.asarray(scores, dtype=np.float64)
    rows.data[SOURCE_KEY] = np.array([STUDENT_SOURCE] * k)
    if shaped:  # exactly the keys of ``parts`` (judged parts carry every key set above): merge rejects others
        rows.data = {key: rows.data[key] for key in parts.data}
    return rows


def _confidence(finds: sv.Detections) -> np.ndarray:
    return np.asarray(finds.confidence if finds.confidence is not None else np.ones(len(finds)), dtype=np.float32)


def _blank(values: np.ndarray, k: int) -> np.ndarray:
    """``k`` rows of a data key the student has no value for: NaN, -1, False, '' or None by the key's dtype."""
    shape = (k, *values.shape[1:])
    if values.dtype.kind == "f":
        return np.full(shape, np.nan, dtype=values.dtype)
    if values.dtype.kind in "iu":
        return np.full(shape, -1 if values.dtype.kind == "i" else 0, dtype=values.dtype)
    if values.dtype.kind == "b":
        return np.zeros(shape, dtype=bool)
    if values.dtype.kind in "US":
        return np.full(shape, "", dtype=values.dtype)
    return np.full(shape, None, dtype=object)


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: a list of equal-shape arrays would broadcast
        out[i] = value
    return out
