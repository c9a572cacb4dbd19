"""Stage 1: anchor detection with any weights Ultralytics loads (.pt, OpenVINO folder, ONNX, TensorRT engine)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from streamlabel.config import DetectModelConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.detect_engine import (
    DEFAULT_MAX_BATCH,
    EngineSpec,
    Exporter,
    cached_engine,
    engine_load_failed,
    engine_wanted,
    is_pt,
    spec_for,
    ultralytics_export,
)

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
    """Finds anchors (e.g. dogs) with an Ultralytics YOLO model, one batched call per list of images.

    It also finds the classes that checks name as ``detector_class`` (``person`` for ``no_human``): each image's
    Detections holds the anchor rows and those rows, told apart by ``data['class_name']`` (the Labeler splits them).

    With ``models.detect.tensorrt: auto`` on CUDA, ``.pt`` weights run as a TensorRT engine cached beside them
    (``detect_engine``; ``self.engine`` is its path, None when the weights run as they are). ``max_batch`` is the
    largest batch the engine accepts (larger calls are split); ``exporter`` and ``engine_spec`` replace the
    Ultralytics export and the spec read from the runtime (tests, callers that know their GPU).
    """

    def __init__(
        self,
        cfg: DetectModelConfig,
        target: TargetConfig,
        runtime: Runtime,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        exporter: Exporter = ultralytics_export,
        engine_spec: EngineSpec | None = None,
    ) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.model_id = cfg.weights
        self.min_confidence = target.anchor.min_confidence
        self.model, self.engine = _load_model(cfg, runtime, max_batch, exporter, engine_spec)
        self._max_batch = max_batch if self.engine is not None else None
        names: dict[int, str] = dict(self.model.names)  # type: ignore[attr-defined]
        by_name = {name: idx for idx, name in names.items()}
        missing = [c for c in target.anchor.classes if c not in by_name]
        if missing:
            raise ValueError(
                f"target.anchor.classes: {', '.join(map(repr, missing))} not among the classes of {cfg.weights} "
                f"(some known: {_some(by_name)}, ...)"
            )
        self.class_ids = [by_name[c] for c in target.anchor.classes]
        # class id -> confidence its rows need: the anchor threshold, or the lowest threshold of the checks naming it.
        self.min_confidence_of = dict.fromkeys(self.class_ids, self.min_confidence)
        for check in target.validation.checks:
            if check.detector_class is None:
                continue
            if check.detector_class not in by_name:
                raise ValueError(
                    f"target.validation.checks[{check.name}].detector_class: {check.detector_class!r} is not among "
                    f"the classes of {cfg.weights} (some known: {_some(by_name)}, ...); name one of them or remove "
                    "detector_class"
                )
            idx = by_name[check.detector_class]
            self.min_confidence_of[idx] = min(self.min_confidence_of.get(idx, 1.0), check.detector_min_confidence)
        # Exported formats (OpenVINO, ONNX, TensorRT) pick their own device; only .pt / yaml models move.
        self._device = runtime.device if str(cfg.weights).endswith((".pt", ".yaml")) else None
        # Ultralytics 8.4 names half precision `quantize=16` (the older `half=True` is deprecated there).
        self._precision = {"quantize": 16} if cfg.half and runtime.cuda else {}

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        """Rows per RGB image (anchors and the checks' classes): xyxy in pixels, confidence, class_id,
        data['class_name']; each row at or above its class's threshold."""
        if not images:
            return []
        # Ultralytics treats numpy input as BGR (OpenCV order); frames are RGB.
        bgr = [np.ascontiguousarray(img[..., ::-1]) for img in images]
        step = self._max_batch or len(bgr)  # an engine refuses batches above its profile's maximum
        results = [r for start in range(0, len(bgr), step) for r in self._predict(bgr[start : start + step])]
        return [self._thresholded(sv.Detections.from_ultralytics(r)) for r in results]

    def _predict(self, bgr: list[np.ndarray]) -> list:
        return self.model.predict(  # type: ignore[attr-defined]
            bgr,
            conf=min(self.min_confidence_of.values()),
            classes=list(self.min_confidence_of),
            imgsz=self.cfg.imgsz,
            max_det=self.cfg.max_det,
            device=self._device,
            verbose=False,
            **self._precision,
        )

    def _thresholded(self, found: sv.Detections) -> sv.Detections:
        if len(found) == 0:
            return found
        need = np.array([self.min_confidence_of.get(int(c), 1.0) for c in found.class_id], dtype=np.float32)
        return found[found.confidence >= need]


def _load_model(
    cfg: DetectModelConfig, runtime: Runtime, max_batch: int, exporter: Exporter, spec: EngineSpec | None
) -> tuple[object, Path | None]:
    """The model to run and its engine: the cached TensorRT engine when wanted and it loads, else ``cfg.weights``."""
    model = load_yolo(cfg.weights)
    if cfg.tensorrt == "off" or not is_pt(cfg.weights) or (spec is None and not engine_wanted(cfg, runtime)):
        return model, None
    pt = Path(model.ckpt_path)  # type: ignore[attr-defined]  # a release name resolves to where Ultralytics put it
    engine = None
    try:
        engine = cached_engine(pt, spec or spec_for(cfg, runtime, max_batch), exporter)
        if engine is None:
            return model, None
        exported = load_yolo(str(engine), task="detect")
        dict(exported.names)  # type: ignore[attr-defined]  # loads the engine now, not at the first frame
    except Exception as exc:  # a broken TensorRT install or engine falls back to the .pt
        engine_load_failed(engine, pt, exc)
        return model, None
    return exported, engine


def _some(by_name: dict[str, int]) -> str:
    return ", ".join(sorted(by_name)[:20])
