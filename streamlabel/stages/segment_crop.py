"""Crop geometry for segmenting small parts at resolution (``models.segment.mode: crop``).

SAM2 resizes whatever image it gets to its square input (1024 px) and predicts masks on a grid a quarter of
that side, so a 12-pixel eye in a 1080p frame covers about two by two mask cells. Here the parts of one anchor
(rows sharing ``data["anchor_index"]``) are cut out of the frame in one square crop: the union of their boxes
grown by a context margin, at least ``min_side_px`` wide so that SAM2 never magnifies a crop more than
``input size / min_side_px``, and kept inside the frame. SAM2's masks come back at the crop's size in frame
pixels and are pasted at the crop's offset. No anchor boxes are needed: the parts define their crop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv

from streamlabel.frames import ANCHOR_INDEX_KEY

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Crop:
    """One crop: the part rows of one anchor in one frame, and the crop box in frame pixels.

    ``x0, y0`` are inclusive and ``x1, y1`` exclusive integer pixel bounds inside the frame.
    """

    frame: int
    rows: np.ndarray
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The crop's pixels of ``image`` (a view; H×W×C)."""
        return image[self.y0 : self.y1, self.x0 : self.x1]

    def boxes_in_crop(self, xyxy: np.ndarray) -> np.ndarray:
        """This crop's part boxes (rows of the frame's ``xyxy``) in crop pixel coordinates, float32."""
        offset = np.array([self.x0, self.y0, self.x0, self.y0], dtype=np.float32)
        return np.asarray(xyxy, dtype=np.float32)[self.rows] - offset


def plan_crops(
    parts: Sequence[sv.Detections], shapes: Sequence[tuple[int, ...]], context: float, min_side_px: float
) -> list[Crop]:
    """One crop per (frame, anchor index) that has parts; every part row is in exactly one crop.

    ``shapes`` are the frames' (H, W, ...) shapes. Parts without an ``anchor_index`` key share one crop per frame.
    """
    if len(parts) != len(shapes):
        raise ValueError(f"plan_crops got {len(parts)} part lists but {len(shapes)} frame shapes")
    crops = []
    for frame, (frame_parts, shape) in enumerate(zip(parts, shapes, strict=True)):
        if len(frame_parts) == 0:
            continue
        for rows in _groups(frame_parts):
            box = crop_box(frame_parts.xyxy[rows], (int(shape[0]), int(shape[1])), context, min_side_px)
            crops.append(Crop(frame, rows, *box))
    return crops


def _groups(parts: sv.Detections) -> list[np.ndarray]:
    """Row indices of the parts of each anchor, in order of first appearance."""
    if ANCHOR_INDEX_KEY not in parts.data:
        return [np.arange(len(parts))]
    anchors = np.asarray(parts.data[ANCHOR_INDEX_KEY])
    _, first = np.unique(anchors, return_index=True)
    return [np.flatnonzero(anchors == anchors[i]) for i in sorted(first)]


def crop_box(
    xyxy: np.ndarray, frame_hw: tuple[int, int], context: float, min_side_px: float
) -> tuple[int, int, int, int]:
    """Square crop ``(x0, y0, x1, y1)`` around part boxes, clamped to the frame.

    The union of the boxes grows by ``context`` times the largest part side on each side, then to at least
    ``min_side_px``, centred on the union; a crop larger than the frame along an axis is cut to the frame there
    (then it is not square), otherwise it is shifted inside the frame without shrinking.
    """
    height, width = frame_hw
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    ux0, uy0 = boxes[:, 0].min(), boxes[:, 1].min()
    ux1, uy1 = boxes[:, 2].max(), boxes[:, 3].max()
    part_side = float(np.max(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    margin = context * max(part_side, 0.0)
    side = max(ux1 - ux0 + 2 * margin, uy1 - uy0 + 2 * margin, min_side_px, 1.0)
    x0, x1 = _span((ux0 + ux1) / 2, side, width)
    y0, y1 = _span((uy0 + uy1) / 2, side, height)
    return x0, y0, x1, y1


def _span(centre: float, side: float, limit: int) -> tuple[int, int]:
    """Integer ``[start, end)`` of length ``ceil(side)``, at most ``limit``, around ``centre``, in ``[0, limit)``."""
    length = min(math.ceil(side), limit)
    start = round(float(centre) - length / 2)
    start = min(max(start, 0), limit - length)
    return start, start + length


def paste_masks(
    crops: Sequence[Crop],
    crop_masks: Sequence[np.ndarray],
    crop_scores: Sequence[np.ndarray],
    counts: Sequence[int],
    shapes: Sequence[tuple[int, ...]],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame an (N, H, W) bool mask array and (N,) float32 scores from the crops' masks and scores.

    ``crop_masks[k]`` is (len(rows), crop height, crop width); ``counts`` and ``shapes`` are the frames' part
    counts and (H, W, ...) shapes. Pixels outside a part's crop are False.
    """
    masks = [np.zeros((n, int(s[0]), int(s[1])), dtype=bool) for n, s in zip(counts, shapes, strict=True)]
    scores = [np.zeros(n, dtype=np.float32) for n in counts]
    for crop, mask, score in zip(crops, crop_masks, crop_scores, strict=True):
        expected = (len(crop.rows), crop.height, crop.width)
        if mask.shape != expected:
            raise ValueError(f"crop mask of frame {crop.frame} has shape {mask.shape}, expected {expected}")
        masks[crop.frame][crop.rows, crop.y0 : crop.y1, crop.x0 : crop.x1] = mask
        scores[crop.frame][crop.rows] = score
    return masks, scores
