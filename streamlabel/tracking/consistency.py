"""Temporal mask consistency: does a part's new mask agree with its previous mask, moved by the track's motion?

The motion is the box-to-box affine map (scale and translation) from the track's smoothed box in the previous
frame to its smoothed box now. The Kalman boxes are used, not the masks' own bounding boxes: a mask that jumps to
the other eye drags its own bounding box along, but not the track's box, so the jump shows as a low score.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Boxes narrower than this (pixels) give no usable scale; the map then only translates.
_MIN_SIDE_PX = 1e-3


def box_affine(src_xyxy: np.ndarray, dst_xyxy: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix (scale + translation, no rotation) that maps box ``src`` onto box ``dst``."""
    sx1, sy1, sx2, sy2 = (float(v) for v in np.asarray(src_xyxy).reshape(4))
    dx1, dy1, dx2, dy2 = (float(v) for v in np.asarray(dst_xyxy).reshape(4))
    src_w, src_h = sx2 - sx1, sy2 - sy1
    scale_x = (dx2 - dx1) / src_w if src_w > _MIN_SIDE_PX else 1.0
    scale_y = (dy2 - dy1) / src_h if src_h > _MIN_SIDE_PX else 1.0
    return np.array([[scale_x, 0.0, dx1 - scale_x * sx1], [0.0, scale_y, dy1 - scale_y * sy1]], dtype=np.float64)


def warp_mask(mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` (H×W bool) moved by the 2x3 ``matrix`` onto a canvas of ``shape`` (H, W); nearest neighbour.

    ``matrix`` maps continuous image coordinates (pixel ``i`` covers ``[i, i + 1)``); it is shifted here to map pixel
    centres, which cv2 works with, so that scaling a box scales the mask onto exactly the new box.
    """
    h, w = shape
    matrix = np.array(matrix, dtype=np.float64)
    matrix[:, 2] += 0.5 * (np.diag(matrix[:, :2]) - 1.0)
    moved = cv2.warpAffine(mask.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return moved.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one shape; two empty masks agree (1.0)."""
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b)) / union


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The pixel bounds ``(x0, y0, x1, y1)`` (end exclusive) of a boolean mask, or None when it is empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if len(cols) == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def consistency_score(
    previous_mask: np.ndarray, previous_xyxy: np.ndarray, mask: np.ndarray, xyxy: np.ndarray
) -> float:
    """IoU of ``mask`` with ``previous_mask`` moved from box ``previous_xyxy`` to box ``xyxy``: 0 (none) to 1.

    Only the window that can hold either mask is warped and compared (a few hundred pixels for an eye, not the
    whole frame); the result is the same as on the full frame.

    Args:
        previous_mask: the track's mask in its previous frame (H×W bool; any size).
        previous_xyxy: the track's box in that frame.
        mask: the new mask (H×W bool); the result is computed on its canvas.
        xyxy: the track's box now.
    """
    matrix = box_affine(previous_xyxy, xyxy)
    height, width = mask.shape[:2]
    new_box, old_box = mask_box(mask), mask_box(previous_mask)
    if old_box is None or new_box is None:
        return 1.0 if old_box is None and new_box is None else 0.0
    corners = np.array([[old_box[0], old_box[1], 1.0], [old_box[2], old_box[3], 1.0]]) @ matrix.T
    x0 = max(0, min(new_box[0], int(np.floor(corners[:, 0].min())) - 1))
    y0 = max(0, min(new_box[1], int(np.floor(corners[:, 1].min())) - 1))
    x1 = min(width, max(new_box[2], int(np.ceil(corners[:, 0].max())) + 1))
    y1 = min(height, max(new_box[3], int(np.ceil(corners[:, 1].max())) + 1))
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    moved = warp_mask(previous_mask, shifted, (y1 - y0, x1 - x0))
    return mask_iou(moved, mask[y0:y1, x0:x1].astype(bool))
