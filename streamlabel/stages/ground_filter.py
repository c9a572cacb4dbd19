"""Grounding's spatial filter: crop windows, which anchor a part belongs to, area bounds, NMS across anchors and the
per-anchor cap. Plain numpy (and supervision's NMS), so it is tested on hand-made boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.config import PartConfig
from streamlabel.frames import ANCHOR_INDEX_KEY


def box_areas(xyxy: np.ndarray) -> np.ndarray:
    """Area of each (x1, y1, x2, y2) box; degenerate boxes have area 0."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)


def crop_boxes(anchors_xyxy: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Integer crop windows: each anchor grown by ``margin`` of its width/height, clipped to the image.

    Returns an (N, 4) int array; a window is at least one pixel wide and tall when the anchor touches the image.
    """
    boxes = np.asarray(anchors_xyxy, dtype=np.float64).reshape(-1, 4)
    pad = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1).clip(0, None) * margin
    x0 = np.floor(boxes[:, 0] - pad[:, 0]).clip(0, width)
    y0 = np.floor(boxes[:, 1] - pad[:, 1]).clip(0, height)
    x1 = np.ceil(boxes[:, 2] + pad[:, 0]).clip(0, width)
    y1 = np.ceil(boxes[:, 3] + pad[:, 1]).clip(0, height)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def crop_to_frame(xyxy: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Map boxes in crop pixel coords into frame coords (clipped to the crop window)."""
    x0, y0, x1, y1 = (float(v) for v in window)
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    boxes = np.clip(boxes, 0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    return (boxes + np.array([x0, y0, x0, y0], dtype=np.float32)).astype(np.float32)


def assign_to_anchors(parts_xyxy: np.ndarray, anchors_xyxy: np.ndarray, hint: np.ndarray | None = None) -> np.ndarray:
    """Anchor row of each part: the anchor whose box contains the part's centre, the smallest when several.

    ``hint`` (crop mode) names the anchor a part was found for; the part keeps it only if its centre lies
    inside that anchor. Returns an int array, -1 where a part belongs to no anchor.
    """
    parts = np.asarray(parts_xyxy, dtype=np.float64).reshape(-1, 4)
    anchors = np.asarray(anchors_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(parts) == 0 or len(anchors) == 0:
        return np.full(len(parts), -1, dtype=np.int64)
    cx = (parts[:, 0] + parts[:, 2]) / 2
    cy = (parts[:, 1] + parts[:, 3]) / 2
    inside = (
        (cx[:, None] >= anchors[None, :, 0])
        & (cx[:, None] <= anchors[None, :, 2])
        & (cy[:, None] >= anchors[None, :, 1])
        & (cy[:, None] <= anchors[None, :, 3])
    )
    if hint is not None:
        hint = np.asarray(hint, dtype=np.int64)
        ok = inside[np.arange(len(parts)), hint]
        return np.where(ok, hint, -1)
    areas = np.where(inside, box_areas(anchors)[None, :], np.inf)
    return np.where(inside.any(axis=1), areas.argmin(axis=1), -1).astype(np.int64)


def area_ratio_ok(
    parts_xyxy: np.ndarray, anchors_xyxy: np.ndarray, anchor_index: np.ndarray, low: float, high: float
) -> np.ndarray:
    """True where part area / its anchor's area lies within [low, high]; False for unassigned parts (-1)."""
    anchor_index = np.asarray(anchor_index, dtype=np.int64)
    assigned = anchor_index >= 0
    if not assigned.any():
        return assigned
    anchor_areas = box_areas(anchors_xyxy)[np.where(assigned, anchor_index, 0)]
    ratio = box_areas(parts_xyxy) / np.where(anchor_areas > 0, anchor_areas, np.inf)
    return assigned & (ratio >= low) & (ratio <= high)


def merge_and_cap(
    parts_xyxy: np.ndarray, scores: np.ndarray, anchor_index: np.ndarray, iou: float, max_per_anchor: int
) -> np.ndarray:
    """Indices kept after NMS across all anchors in frame coordinates and the per-anchor cap, ordered by anchor then
    score.

    One physical part is labeled once: when two anchor crops overlap, the part found in both is merged into its best
    copy, which keeps the anchor it was assigned for that crop (``assign_to_anchors``).
    """
    parts = np.asarray(parts_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    anchor_index = np.asarray(anchor_index, dtype=np.int64).reshape(-1)
    if len(parts) == 0:
        return np.empty(0, dtype=np.int64)
    keep = sv.box_non_max_suppression(np.c_[parts, scores], iou_threshold=iou)
    kept = np.flatnonzero(keep)
    kept = kept[np.lexsort((-scores[kept], anchor_index[kept]))]
    rank = np.zeros(len(kept), dtype=np.int64)
    for i in range(1, len(kept)):
        rank[i] = rank[i - 1] + 1 if anchor_index[kept[i]] == anchor_index[kept[i - 1]] else 0
    return kept[rank < max_per_anchor]


def one_per_part(parts: sv.Detections, iou: float) -> sv.Detections:
    """The rows of a frame's parts that survive NMS across all anchors at ``iou``, in their order.

    The Labeler applies it to whatever a grounder backend returns, so that a part found for two overlapping anchors
    is labeled once by any backend; the Grounding DINO backend's own filter already does it (``filter_parts``).
    """
    if len(parts) < 2:
        return parts
    scores = parts.confidence if parts.confidence is not None else np.ones(len(parts), dtype=np.float32)
    keep = sv.box_non_max_suppression(np.c_[parts.xyxy, scores], iou_threshold=iou)
    return parts if keep.all() else parts[keep]


def filter_parts(
    parts_xyxy: np.ndarray,
    scores: np.ndarray,
    anchors_xyxy: np.ndarray,
    part: PartConfig,
    hint: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the spatial filter; return (kept part indices, their anchor rows).

    A part is kept when its centre lies inside an anchor (``hint``'s anchor in crop mode), its area relative to
    that anchor is within ``[part.min_area_ratio, part.max_area_ratio]``, it survives NMS across every anchor of the
    frame at ``part.nms_iou`` (a part seen in two overlapping crops is kept once) and is among the
    ``part.max_per_anchor`` best of its anchor.
    """
    anchor_index = assign_to_anchors(parts_xyxy, anchors_xyxy, hint)
    ok = area_ratio_ok(parts_xyxy, anchors_xyxy, anchor_index, part.min_area_ratio, part.max_area_ratio)
    candidates = np.flatnonzero(ok)
    kept = merge_and_cap(
        np.asarray(parts_xyxy).reshape(-1, 4)[candidates],
        np.asarray(scores).reshape(-1)[candidates],
        anchor_index[candidates],
        part.nms_iou,
        part.max_per_anchor,
    )
    indices = candidates[kept]
    return indices, anchor_index[indices]


def parts_detections(
    xyxy: np.ndarray, scores: np.ndarray, anchor_index: np.ndarray, class_name: str, phrases: Sequence[str]
) -> sv.Detections:
    """Grounder output rows (class_id 0, data anchor_index / class_name / phrase); works for zero rows."""
    n = len(anchor_index)
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(n, 4),
        confidence=np.asarray(scores, dtype=np.float32).reshape(n),
        class_id=np.zeros(n, dtype=np.int64),
        data={
            ANCHOR_INDEX_KEY: np.asarray(anchor_index, dtype=np.int64).reshape(n),
            CLASS_NAME_DATA_FIELD: np.array([class_name] * n, dtype=str),
            "phrase": np.array(list(phrases), dtype=str).reshape(n),
        },
    )
