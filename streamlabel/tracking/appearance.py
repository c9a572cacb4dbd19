"""A part's look: a small grayscale patch of its box, and how alike two such patches are.

Verdict reuse (``StreamTracks.reusable``) needs a part to still look as it did when its mask was accepted: an eye
that closes keeps a consistent mask, not its look.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

PATCH_SIDE_PX = 20  # side of the grayscale patch that stands for a part's look (its box plus a margin)
PATCH_MARGIN = 0.25  # margin around the box, as a share of its side on each side
PATCH_SHIFT_PX = 2  # patches are compared at every shift up to this many patch pixels (box jitter)
FLAT_GRAY_STEP = 8.0  # two flat patches look alike when their brightness differs by at most this many gray levels


def appearance_patch(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """The part's box (plus ``PATCH_MARGIN``) as a ``PATCH_SIDE_PX`` square grayscale patch."""
    h, w = image.shape[:2]
    box = np.asarray(xyxy, dtype=np.float64)
    pad = PATCH_MARGIN * (box[2:] - box[:2])
    x1, y1 = (round(float(v)) for v in box[:2] - pad)
    x2, y2 = (round(float(v)) for v in box[2:] + pad)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))
    if x2 <= x1 or y2 <= y1:
        return np.zeros((PATCH_SIDE_PX, PATCH_SIDE_PX), dtype=np.float32)
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return cv2.resize(gray, (PATCH_SIDE_PX, PATCH_SIDE_PX), interpolation=cv2.INTER_AREA).astype(np.float32)


def patch_similarity(reference: np.ndarray, patch: np.ndarray) -> float:
    """Normalised correlation of two patches' central windows, the best over shifts of up to ``PATCH_SHIFT_PX``
    (-1..1; 0 when either window is flat): robust to the jitter of a part's box, not to an eye that closed."""
    k, n = PATCH_SHIFT_PX, PATCH_SIDE_PX - 2 * PATCH_SHIFT_PX
    window = patch[k : k + n, k : k + n]
    centre = _normalised(window)
    if not centre.any():  # a flat window looks like a flat reference of about its brightness, like nothing else
        flat = float(reference.std()) <= 1.0 and abs(float(reference.mean()) - float(window.mean())) <= FLAT_GRAY_STEP
        return 1.0 if flat else 0.0
    best = -1.0
    for dy in range(2 * k + 1):
        for dx in range(2 * k + 1):
            best = max(best, float(np.mean(centre * _normalised(reference[dy : dy + n, dx : dx + n]))))
    return best


def _normalised(window: np.ndarray) -> np.ndarray:
    std = float(window.std())
    return (window - window.mean()) / std if std > 1.0 else np.zeros_like(window)
