"""Stage 2: Grounding DINO (transformers) finds the part with a generic prompt inside each anchor.

The model runs on anchor crops (``target.part.mode: crop``, the default) or once on the whole frame (``full``);
either way only parts whose box centre lies inside an anchor survive, with area bounds relative to that anchor,
NMS across all anchors in frame coordinates (a part seen in two overlapping crops is labeled once) and a per-anchor
cap. The spatial filter is plain numpy so it can be tested on hand-made boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.config import GroundModelConfig, PartConfig, TargetConfig
from streamlabel.frames import ANCHOR_INDEX_KEY
from streamlabel.stages.base import ModelUnavailableError, Runtime

log = logging.getLogger(__name__)

STAGE = "ground"


# --------------------------------------------------------------------------------------------- pure helpers


def normalize_prompt(prompt: str) -> str:
    """Lowercase, collapse whitespace and end with exactly one period: ' Eye . ' -> 'eye.'."""
    return " ".join(prompt.lower().split()).strip(" .") + "."


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


# --------------------------------------------------------------------------------------------- backend


@dataclass
class _Job:
    """One model input: an image (or crop) and where it came from."""

    image_index: int
    pixels: np.ndarray
    window: np.ndarray  # crop window in frame coords (the whole frame in full mode)
    anchor: int | None  # anchor row the crop was cut for; None in full mode


def _looks_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()


def _load(model: str, runtime: Runtime) -> tuple[Any, Any]:
    """Processor and eval-mode model from an id or folder; ModelUnavailableError when the weights are missing."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    if _looks_local(model):
        folder = Path(model).expanduser()
        looked = str(folder)
        if not (folder / "config.json").is_file():
            raise ModelUnavailableError(STAGE, model, looked, "no config.json there")
    else:
        looked = f"the Hugging Face cache {constants.HF_HUB_CACHE}"
        looked += " (offline: HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else " and huggingface.co"
    dtype = runtime.torch_dtype()  # 'auto' resolved to float32 on the CPU; an explicit dtype is kept there too
    try:
        processor = AutoProcessor.from_pretrained(model)
        net = AutoModelForZeroShotObjectDetection.from_pretrained(model, dtype=dtype)
    except (OSError, ValueError, HFValidationError) as exc:  # ValueError: a folder of another model type
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelUnavailableError(STAGE, model, looked, f"{type(exc).__name__}: {first_line}") from exc
    return processor, net.to(runtime.device).eval()


class GroundingDinoGrounder:
    """Grounding DINO part finder; built from ``models.ground``, the target and the runtime.

    ``ground(images, anchors)`` takes H×W×3 RGB uint8 frames and their anchor Detections and returns, per frame,
    part boxes in frame pixels with ``data['anchor_index']`` pointing into that frame's anchors.
    """

    def __init__(self, cfg: GroundModelConfig, target: TargetConfig, runtime: Runtime) -> None:
        self.cfg, self.part, self.runtime = cfg, target.part, runtime
        self.prompt = normalize_prompt(target.part.prompt)
        self.class_name = target.part.class_name
        self._processor, self._model = _load(cfg.model, runtime)
        self._specials = set(self._processor.tokenizer.all_special_tokens)
        log.info("grounder %s loaded on %s (%s), prompt %r", cfg.model, runtime.device, runtime.dtype, self.prompt)

    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]:
        """Part Detections per image (empty for an image without anchors, which is not sent to the model)."""
        if len(images) != len(anchors):
            raise ValueError(f"ground() got {len(images)} images but {len(anchors)} anchor sets")
        jobs = [
            job for i, (img, anc) in enumerate(zip(images, anchors, strict=True)) for job in self._jobs(i, img, anc)
        ]
        raw = self._infer(jobs)
        found: list[list[tuple[_Job, np.ndarray, np.ndarray, list[str]]]] = [[] for _ in images]
        for job, result in zip(jobs, raw, strict=True):
            found[job.image_index].append((job, *result))
        return [self._select(anc, hits) for anc, hits in zip(anchors, found, strict=True)]

    def _jobs(self, image_index: int, image: np.ndarray, anchors: sv.Detections) -> list[_Job]:
        if len(anchors) == 0:
            return []
        height, width = image.shape[:2]
        if self.part.mode == "full":
            return [_Job(image_index, image, np.array([0, 0, width, height]), None)]
        windows = crop_boxes(anchors.xyxy, self.part.crop_margin, width, height)
        return [
            _Job(image_index, image[y0:y1, x0:x1], np.array([x0, y0, x1, y1]), row)
            for row, (x0, y0, x1, y1) in enumerate(windows)
            if x1 > x0 and y1 > y0
        ]

    def _infer(self, jobs: list[_Job]) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
        """Run the model in batches of ``cfg.batch_size``; per job (frame-coord boxes, scores, phrases)."""
        out: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
        for start in range(0, len(jobs), self.cfg.batch_size):
            batch = jobs[start : start + self.cfg.batch_size]
            for job, (boxes, scores, phrases) in zip(batch, self._forward([j.pixels for j in batch]), strict=True):
                out.append((crop_to_frame(boxes, job.window), scores, phrases))
        return out

    def _forward(self, pixels: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
        import torch

        inputs = self._processor(
            images=pixels,
            text=[self.prompt] * len(pixels),
            return_tensors="pt",
            input_data_format="channels_last",
        ).to(self.runtime.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        with torch.inference_mode():
            outputs = self._model(**inputs)
            outputs.logits, outputs.pred_boxes = outputs.logits.float(), outputs.pred_boxes.float()
            results = self._processor.post_process_grounded_object_detection(
                outputs,
                input_ids=inputs["input_ids"],
                threshold=self.part.box_threshold,
                text_threshold=self.part.text_threshold,
                target_sizes=[p.shape[:2] for p in pixels],
            )
        log.debug("grounded %d inputs: %s boxes", len(pixels), [len(r["scores"]) for r in results])
        return [
            (
                r["boxes"].cpu().numpy(),
                r["scores"].cpu().numpy(),
                [self._phrase(t) for t in (r["text_labels"] if "text_labels" in r else r["labels"])],
            )
            for r in results
        ]

    def _phrase(self, text: str) -> str:
        """The model's label without tokenizer specials and trailing periods ('eye. [SEP]' -> 'eye')."""
        return " ".join(w for w in text.split() if w not in self._specials).strip(" .")

    def _select(
        self, anchors: sv.Detections, hits: list[tuple[_Job, np.ndarray, np.ndarray, list[str]]]
    ) -> sv.Detections:
        """Spatial filter over every hit of one frame; rows ordered by anchor, then score."""
        if not hits:
            return parts_detections(np.empty((0, 4)), [], [], self.class_name, [])
        xyxy = np.concatenate([h[1] for h in hits]).reshape(-1, 4)
        scores = np.concatenate([h[2] for h in hits]).reshape(-1)
        phrases = [p for h in hits for p in h[3]]
        hint = None
        if self.part.mode == "crop":
            hint = np.concatenate([np.full(len(h[2]), h[0].anchor, dtype=np.int64) for h in hits])
        keep, anchor_index = filter_parts(xyxy, scores, anchors.xyxy, self.part, hint)
        return parts_detections(xyxy[keep], scores[keep], anchor_index, self.class_name, [phrases[i] for i in keep])
