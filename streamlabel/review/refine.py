"""Fixing a mask with clicks: SAM2 re-segments one part from the person's positive and negative points.

The refiner shares the loaded SAM2 model with the labeler (the daemon's segmenter) but has a predictor of its
own, because a predictor keeps per-image state (``set_image``): clicks between the labeler's calls would mix
the two images. Its own lock serializes the page's requests. ``streamlabel review`` loads the configured SAM2
model on the first fix.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamlabel.stages.polygon import mask_to_polygon

log = logging.getLogger(__name__)


class NoMask(ValueError):
    """SAM2 found no region at the clicked points; the message says what to try."""


class Refiner:
    """Masks from clicks: ``polygon(image, points, box)`` gives a normalized outline."""

    def __init__(self, predictor: Any, tolerance_px: float = 1.0) -> None:
        self._predictor = predictor
        self.tolerance_px = tolerance_px  # outline simplification, frame pixels (models.segment.polygon_tolerance_px)
        self._lock = threading.Lock()

    def polygon(
        self, image: np.ndarray, points: Sequence[tuple[float, float, int]], box_xyxy: Sequence[float] | None = None
    ) -> list[list[float]]:
        """The outline of SAM2's mask for ``points`` (pixels, 1 positive, 0 negative), normalized to 0-1.

        ``box_xyxy`` (pixels) says where the part is: with a box, points are optional (a box drawn around a part
        the pipeline missed); without one, a positive point is needed. Raises NoMask when the mask is empty.
        """
        if box_xyxy is None and not any(label == 1 for *_, label in points):
            raise NoMask("click at least one point on the part (a positive point)")
        coords = np.array([[x, y] for x, y, _ in points], np.float32) if points else None
        labels = np.array([int(label) for *_, label in points], np.int32) if points else None
        box = None if box_xyxy is None else np.asarray(box_xyxy, np.float32)
        with self._lock:
            self._predictor.set_image(np.ascontiguousarray(image))
            masks, _, _ = self._predictor.predict(
                point_coords=coords, point_labels=labels, box=box, multimask_output=False
            )
        outline = mask_to_polygon(np.asarray(masks[0]) > 0, self.tolerance_px)
        if len(outline) < 3:
            raise NoMask("SAM2 found no region there; click inside the part, draw the box tighter, or fewer negatives")
        h, w = image.shape[:2]
        return [[round(float(x) / w, 6), round(float(y) / h, 6)] for x, y in outline]


def refiner_factory(cfg: Any, segmenter: Any = None) -> Callable[[], Refiner]:
    """A function that builds the Refiner on first use (and then returns the same one).

    With the daemon's ``segmenter``, over its model; else over the SAM2 model of ``cfg.models.segment``.
    """
    built: list[Refiner] = []
    lock = threading.Lock()

    def get() -> Refiner:
        with lock:
            if not built:
                source = segmenter if hasattr(segmenter, "new_predictor") else _load_segmenter(cfg)
                built.append(Refiner(source.new_predictor(), cfg.models.segment.polygon_tolerance_px))
            return built[0]

    return get


def _load_segmenter(cfg: Any) -> Any:
    from streamlabel.stages.base import Runtime
    from streamlabel.stages.segment import Sam2Segmenter

    log.info("loading SAM2 for the review page's fixes (first fix)")
    return Sam2Segmenter(cfg.models.segment, cfg.target, Runtime.resolve(cfg.models.device, cfg.models.dtype))
