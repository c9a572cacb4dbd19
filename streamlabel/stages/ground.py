"""Stage 2: Grounding DINO (transformers) finds the part with a generic prompt inside each anchor.

The model runs on anchor crops (``target.part.mode: crop``, the default) or once on the whole frame (``full``);
either way only parts whose box centre lies inside an anchor survive, with area bounds relative to that anchor,
NMS across all anchors in frame coordinates (a part seen in two overlapping crops is labeled once) and a per-anchor
cap. The spatial filter (``ground_filter``) is plain numpy so it can be tested on hand-made boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config import GroundModelConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.ground_filter import (
    area_ratio_ok,
    assign_to_anchors,
    box_areas,
    crop_boxes,
    crop_to_frame,
    filter_parts,
    merge_and_cap,
    one_per_part,
    parts_detections,
)

__all__ = [  # the spatial filter lives in ground_filter; its names stay importable from here
    "GroundingDinoGrounder",
    "area_ratio_ok",
    "assign_to_anchors",
    "box_areas",
    "crop_boxes",
    "crop_to_frame",
    "filter_parts",
    "input_size",
    "merge_and_cap",
    "normalize_prompt",
    "one_per_part",
    "parts_detections",
]

log = logging.getLogger(__name__)

STAGE = "ground"
LONG_TO_SHORT = 5 / 3  # longest / shortest edge of the published processors (1333 / 800)


# --------------------------------------------------------------------------------------------- pure helpers


def normalize_prompt(prompt: str) -> str:
    """Lowercase, collapse whitespace and end with exactly one period: ' Eye . ' -> 'eye.'."""
    return " ".join(prompt.lower().split()).strip(" .") + "."


def input_size(short_side_px: int | None) -> dict[str, Any]:
    """The processor's resize for ``models.ground.input_short_side_px``: {} keeps the size saved with the model.

    The long side is capped at 5/3 of the short side, the ratio of the published checkpoints' 800 / 1333.
    """
    if short_side_px is None:
        return {}
    return {"size": {"shortest_edge": short_side_px, "longest_edge": round(short_side_px * LONG_TO_SHORT)}}


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
        self._resize = input_size(cfg.input_short_side_px)
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
            **self._resize,
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
