"""Stage 1: anchor detection with any weights Ultralytics loads (.pt, OpenVINO folder, ONNX, TensorRT engine)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from streamlabel.config import DetectModelConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime

log = logging.getLogger(__name__)

# Ultralytics formats that are folders or files with a fixed suffix; anything else is a release name to fetch.
_LOCAL_SUFFIXES = (".pt", ".onnx", ".engine", ".torchscript", ".mlpackage", ".tflite")


def load_yolo(weights: str, task: str = "detect") -> object:
    """Load Ultralytics weights; ModelUnavailableError naming the model when they are missing and unfetchable."""
    from ultralytics import YOLO

    path = Path(weights).expanduser()
    try:
        return YOLO(str(path) if path.exists() else weights, task=task)
    except (OSError, FileNotFoundError, ConnectionError) as exc:
        from ultralytics.utils import SETTINGS

        looked = f"{path.resolve()} and Ultralytics' weights_dir {SETTINGS.get('weights_dir')}"
        raise ModelUnavailableError("detect", weights, looked, str(exc).strip()[:200]) from None


class UltralyticsDetector:
    """Finds anchors (e.g. dogs) with an Ultralytics YOLO model, one batched call per list of images."""

    def __init__(self, cfg: DetectModelConfig, target: TargetConfig, runtime: Runtime) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.model_id = cfg.weights
        self.min_confidence = target.anchor.min_confidence
        self.model = load_yolo(cfg.weights)
        names: dict[int, str] = dict(self.model.names)  # type: ignore[attr-defined]
        by_name = {name: idx for idx, name in names.items()}
        missing = [c for c in target.anchor.classes if c not in by_name]
        if missing:
            known = ", ".join(sorted(by_name)[:20])
            raise ValueError(
                f"target.anchor.classes: {', '.join(map(repr, missing))} not among the classes of {cfg.weights} "
                f"(some known: {known}, ...)"
            )
        self.class_ids = [by_name[c] for c in target.anchor.classes]
        # Exported formats (OpenVINO, ONNX, TensorRT) pick their own device; only .pt / yaml models move.
        self._device = runtime.device if str(cfg.weights).endswith((".pt", ".yaml")) else None
        # Ultralytics 8.4 names half precision `quantize=16` (the older `half=True` is deprecated there).
        self._precision = {"quantize": 16} if cfg.half and runtime.cuda else {}

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        """Anchors per RGB image: xyxy in pixels, confidence, class_id, data['class_name']."""
        if not images:
            return []
        # Ultralytics treats numpy input as BGR (OpenCV order); frames are RGB.
        bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images]
        results = self.model.predict(  # type: ignore[attr-defined]
            bgr,
            conf=self.min_confidence,
            classes=self.class_ids,
            imgsz=self.cfg.imgsz,
            max_det=self.cfg.max_det,
            device=self._device,
            verbose=False,
            **self._precision,
        )
        return [sv.Detections.from_ultralytics(r) for r in results]
