"""People in images written outside the dataset: pixelated, or the image not written at all (docs/privacy.md).

``apply_privacy(image, person_boxes_xyxy, cfg)`` is called wherever a frame's pixels leave the dataset copy:
review and pending copies, clips, thumbnails. The dataset copy itself is the training data and is the store's
business (frames with people are rejected by the ``no_human`` check by default).

Pixelation, not a Gaussian blur: each block becomes its mean colour, so no detail finer than a block survives
and no deconvolution can bring a face back, while the scene stays readable for a reviewer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from streamlabel.config.privacy import PrivacyConfig

log = logging.getLogger(__name__)


def apply_privacy(
    image: np.ndarray, person_boxes_xyxy: np.ndarray | Sequence[Sequence[float]], cfg: PrivacyConfig
) -> np.ndarray | None:
    """The image to write for ``image`` (H×W×C uint8) with people handled as ``cfg.people`` says.

    ``blur``: a copy with every box (pixels, grown by ``cfg.margin_share`` of its size on each side) pixelated
    into ``cfg.blocks`` blocks along its longer side; pixels outside every box are unchanged. ``drop``: None when
    there is at least one box, else ``image``. ``keep``: ``image``. ``image`` itself is never modified.
    """
    boxes = np.asarray(person_boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if cfg.people == "keep" or len(boxes) == 0:
        return image
    if cfg.people == "drop":
        return None
    out = image.copy()
    for box in boxes:
        region = _grown_box(box, cfg.margin_share, image.shape[1], image.shape[0])
        if region is not None:
            _pixelate(out, region, cfg.blocks)
    return out


def _grown_box(box: np.ndarray, margin_share: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(c1, r1, c2, r2)`` of ``box`` grown by ``margin_share`` of its size, clipped; None when empty."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin_share, (y2 - y1) * margin_share
    c1, r1 = max(int(np.floor(x1 - dx)), 0), max(int(np.floor(y1 - dy)), 0)
    c2, r2 = min(int(np.ceil(x2 + dx)), width), min(int(np.ceil(y2 + dy)), height)
    if c2 <= c1 or r2 <= r1:
        return None
    return c1, r1, c2, r2


def _pixelate(image: np.ndarray, region: tuple[int, int, int, int], blocks: int) -> None:
    """Replace ``region`` of ``image`` in place by ``blocks`` mean-colour blocks along its longer side."""
    c1, r1, c2, r2 = region
    crop = image[r1:r2, c1:c2]
    h, w = crop.shape[:2]
    block_px = max(max(h, w) / blocks, 2.0)  # a box smaller than ``blocks`` pixels still loses its detail
    small_w, small_h = max(round(w / block_px), 1), max(round(h / block_px), 1)
    small = cv2.resize(crop, (small_w, small_h), interpolation=cv2.INTER_AREA)
    image[r1:r2, c1:c2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).reshape(crop.shape)
