"""Loading the student (an Ultralytics YOLO-seg model) and running it on a batch of frames.

Everything that can be wrong with the student file (missing, not a segmentation model, no class for the part,
unloadable, failing on an image) is found when the daemon starts, by loading it and running it once on a blank
frame: ``StudentUnavailableError`` then stops the start with a message naming the file and the fix. A failure
later (a CUDA error mid-run) is logged once and the batch is labeled without the student.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config.student import StudentConfig
from streamlabel.frames import POLYGON_KEY
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.polygon import MIN_POLYGON_POINTS, mask_to_polygon

log = logging.getLogger(__name__)

PROBE_SIDE_PX = 64  # the blank frame the student is tried on at start-up


class StudentUnavailableError(ModelUnavailableError):
    """The configured student cannot be used; the message names the reference, the file and the fix.

    A ``ModelUnavailableError``, so the daemon and the CLI stop at start-up with it like with a missing stage model.
    """

    def __init__(self, ref: str, looked: str, cause: str, fix: str) -> None:
        self.stage, self.model, self.looked, self.cause = "student", ref, looked, cause
        RuntimeError.__init__(self, f"models.student {ref!r} ({looked}): {cause}. {fix}")


def resolve_weights(store_root: Path, ref: str) -> Path:
    """The weights file of ``ref`` (a run id of the store at ``store_root``, or a path); StudentUnavailableError."""
    from streamlabel.train.runs import UnknownStudentError, resolve_student

    try:
        return resolve_student(store_root, ref)
    except UnknownStudentError as exc:
        raise StudentUnavailableError(
            ref, f"store {store_root}", str(exc), "Fix models.student, or unset it to label without a student."
        ) from None


class UltralyticsFinder:
    """Runs a YOLO-seg model on batches of RGB frames: per frame, part boxes with full-frame masks and polygons."""

    def __init__(self, weights: Path, cfg: StudentConfig, part: str, runtime: Runtime, tolerance_px: float) -> None:
        self.weights, self.cfg, self.tolerance_px = weights, cfg, tolerance_px
        self.model = _load(weights, cfg.model or str(weights))
        self.class_ids = _part_classes(dict(self.model.names), part, cfg.model or str(weights), weights)
        self._device = runtime.device
        self._precision = {"quantize": 16} if cfg.half and runtime.cuda else {}

    def find(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        """Per RGB image: the student's parts at or above ``min_confidence``, best first, at most ``max_det``;
        ``mask`` (N, H, W) bool at the frame's size and ``data["polygon"]`` in frame pixels."""
        if not images:
            return []
        bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images]  # Ultralytics reads numpy input as BGR
        results = self.model.predict(
            bgr,
            conf=self.cfg.min_confidence,
            classes=self.class_ids,
            imgsz=self.cfg.imgsz,
            max_det=self.cfg.max_det,
            device=self._device,
            verbose=False,
            **self._precision,
        )
        return [
            self._with_polygons(sv.Detections.from_ultralytics(r), img.shape[:2])
            for r, img in zip(results, images, strict=True)
        ]

    def _with_polygons(self, found: sv.Detections, shape: tuple[int, ...]) -> sv.Detections:
        """Keep the rows whose mask outlines a polygon; add it as ``data["polygon"]``."""
        n = len(found)
        masks = found.mask if found.mask is not None else np.zeros((n, *shape[:2]), dtype=bool)
        polygons = np.empty(n, dtype=object)
        for j in range(n):
            polygons[j] = mask_to_polygon(masks[j], self.tolerance_px)
        keep = np.array([len(p) >= MIN_POLYGON_POINTS for p in polygons], dtype=bool)
        found = sv.Detections(
            xyxy=found.xyxy.reshape(-1, 4), mask=masks, confidence=found.confidence, class_id=found.class_id
        )
        found.data[POLYGON_KEY] = polygons
        return found[keep] if n else found


def build_finder(cfg: StudentConfig, store_root: Path, part: str, runtime: Runtime, tolerance_px: float) -> Any:
    """Resolve, load and try the student once (``StudentUnavailableError`` naming the problem and the fix)."""
    ref = str(cfg.model)
    weights = resolve_weights(store_root, ref)
    finder = UltralyticsFinder(weights, cfg, part, runtime, tolerance_px)
    try:
        finder.find([np.zeros((PROBE_SIDE_PX, PROBE_SIDE_PX, 3), dtype=np.uint8)])
    except Exception as exc:  # any failure of the model on a blank frame: the file is not a usable student
        raise StudentUnavailableError(
            ref, str(weights), f"it fails on a blank frame ({type(exc).__name__}: {exc})", _RETRAIN
        ) from exc
    log.info("student %s loaded from %s (classes %s)", ref, weights, finder.class_ids)
    return finder


_RETRAIN = "Give a YOLO-seg .pt from `streamlabel train` (or yolo segment train), or unset models.student."


def _load(weights: Path, ref: str) -> Any:
    """``YOLO(weights, task='segment')``; StudentUnavailableError when the file does not load or is not a seg model."""
    from ultralytics import YOLO

    if weights.suffix.lower() == ".pt" and not weights.is_file():
        raise StudentUnavailableError(ref, str(weights), "no such file", _RETRAIN)
    try:
        model = YOLO(str(weights), task="segment")
    except Exception as exc:  # torch.load and Ultralytics raise many kinds for a corrupt or foreign file
        cause = f"it does not load as an Ultralytics model ({type(exc).__name__}: {str(exc).strip()[:200]})"
        raise StudentUnavailableError(ref, str(weights), cause, _RETRAIN) from exc
    if model.task != "segment":
        raise StudentUnavailableError(ref, str(weights), f"it is a {model.task!r} model, not 'segment'", _RETRAIN)
    return model


def _part_classes(names: dict[int, str], part: str, ref: str, weights: Path) -> list[int]:
    """The student's class ids of the part: the class named ``part``, or its only class."""
    ids = [i for i, name in names.items() if name == part]
    if ids:
        return ids
    if len(names) == 1:
        return list(names)
    raise StudentUnavailableError(
        ref,
        str(weights),
        f"none of its {len(names)} classes is named {part!r} (target.part.class_name); some: "
        f"{', '.join(list(names.values())[:10])}",
        "Train the student on this store's dataset (`streamlabel train`), whose one class is the part.",
    )
