"""``streamlabel bench segment``: polygon detail of crop versus full-frame segmentation of small parts.

Random weights cannot segment anything, so the model is replaced by an oracle that measures the *geometry* of
the path: ``OraclePredictor`` stands in for ``SAM2ImagePredictor`` and returns the true shape as well as SAM2
could represent it. It reads the shape's coverage from the pixels it is given (the scene draws each part's
anti-aliased coverage into the red channel), resizes that to SAM2's square input (``image_size``, 1024) as
SAM2's transform does, averages it onto SAM2's low-resolution mask grid (a quarter of the side: 256×256),
turns it into logits (half-covered cells are the threshold) and upsamples them with SAM2's own
``postprocess_masks`` (bilinear, to the size of the image it was given). Everything else is the real
``Sam2Segmenter`` path: crop planning, paste back, clean-up, polygon, and here the polygon's rasterisation.

Figures per part size (the ellipse's long axis in pixels, in a 1920×1080 frame): IoU of the polygon's mask
with the true shape (coverage >= 0.5) in ``full`` and ``crop`` mode, the mean and the worst part, the parts
dropped (no usable mask), and polygon points; ``ideal_iou`` is the same round trip from the true mask itself
(the most a pixel polygon can keep of a shape that small).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config import SegmentModelConfig, TargetConfig
from streamlabel.frames import ANCHOR_INDEX_KEY, POLYGON_KEY
from streamlabel.stages.base import Runtime
from streamlabel.stages.polygon import mask_to_polygon, polygon_to_mask
from streamlabel.stages.segment import Sam2Segmenter

log = logging.getLogger(__name__)

SAM2_IMAGE_SIZE = 1024  # SAM2's square input side
MASK_STRIDE = 4  # SAM2 predicts masks at a quarter of its input side (256 × 256)
FRAME_HW = (1080, 1920)
SUPERSAMPLE = 8  # sub-pixel samples per pixel side when rendering the true coverage
ELLIPSE_ASPECT = 0.6  # short axis / long axis of an eye
BOX_SLACK = 0.5  # the oracle keeps coverage within the prompt box grown by this share of its size per side
SIZES_PX = (8, 12, 16, 24, 32, 40)


class OraclePredictor:
    """SAM2ImagePredictor's interface, answering with the true shape at SAM2's mask resolution (see module)."""

    def __init__(self, image_size: int = SAM2_IMAGE_SIZE) -> None:
        from sam2.utils.transforms import SAM2Transforms

        self.model = SimpleNamespace(image_size=image_size)
        self._transforms = SAM2Transforms(resolution=image_size, mask_threshold=0.0)
        self.image_shapes: list[tuple[int, ...]] = []  # every image it was given, for checks
        self.batch_sizes: list[int] = []  # images per set_image_batch call
        self._low_res: list[Any] = []
        self._hw: list[tuple[int, int]] = []

    def set_image_batch(self, images: list[np.ndarray]) -> None:
        """Coverage (red channel) resized to the square input, averaged onto the low-resolution grid."""
        import torch
        import torch.nn.functional as F

        self._low_res, self._hw = [], []
        self.batch_sizes.append(len(images))
        side = self.model.image_size
        for image in images:
            self.image_shapes.append(image.shape)
            coverage = torch.from_numpy(image[..., 0].astype(np.float32) / 255.0)[None, None]
            resized = F.interpolate(coverage, (side, side), mode="bilinear", align_corners=False, antialias=True)
            self._low_res.append(F.avg_pool2d(resized, MASK_STRIDE)[0, 0])
            self._hw.append((int(image.shape[0]), int(image.shape[1])))

    def predict_batch(
        self, box_batch: list[np.ndarray], multimask_output: bool = False
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Per image (N, 1, H, W) bool masks, (N, 1) scores of 1 and the (N, 1, h, w) low-res logits."""
        import torch

        masks, scores, logits = [], [], []
        for low_res, hw, boxes in zip(self._low_res, self._hw, box_batch, strict=True):
            grid = torch.stack([self._within_box(low_res, hw, box) for box in np.asarray(boxes).reshape(-1, 4)])
            upsampled = self._transforms.postprocess_masks(grid[:, None] - 0.5, hw)
            masks.append((upsampled > 0).numpy())
            scores.append(np.ones((len(grid), 1), dtype=np.float32))
            logits.append((grid[:, None] - 0.5).numpy())
        return masks, scores, logits

    @staticmethod
    def _within_box(low_res: Any, hw: tuple[int, int], box: np.ndarray) -> Any:
        """The low-res coverage with cells outside the (slack-grown) prompt box zeroed."""
        x0, y0, x1, y1 = (float(v) for v in box)
        slack = max(BOX_SLACK * max(x1 - x0, y1 - y0), 2.0)
        cells = low_res.shape[0]
        col = (np.arange(cells) + 0.5) * hw[1] / cells  # cell centres in image pixels
        row = (np.arange(cells) + 0.5) * hw[0] / cells
        keep_x = (col >= x0 - slack) & (col <= x1 + slack)
        keep_y = (row >= y0 - slack) & (row <= y1 + slack)
        out = low_res.clone()
        out[~keep_y, :] = 0
        out[:, ~keep_x] = 0
        return out


@dataclass(frozen=True, slots=True)
class Ellipse:
    """A part's true shape: centre (cx, cy), semi-axes (a, b) in pixels, rotation in radians."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def box(self) -> np.ndarray:
        """Tight float xyxy box."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        half_w = np.hypot(self.a * cos, self.b * sin)
        half_h = np.hypot(self.a * sin, self.b * cos)
        return np.array([self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h], dtype=np.float32)

    def coverage(self, hw: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 share of each pixel inside the ellipse (pixel (x, y) spans x-0.5..x+0.5)."""
        out = np.zeros(hw, dtype=np.float32)
        x0, y0, x1, y1 = self.box()
        px0, py0 = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
        px1, py1 = min(int(np.ceil(x1)) + 2, hw[1]), min(int(np.ceil(y1)) + 2, hw[0])
        offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
        xs = (np.arange(px0, px1)[:, None] + offsets).ravel()
        ys = (np.arange(py0, py1)[:, None] + offsets).ravel()
        dx, dy = xs[None, :] - self.cx, ys[:, None] - self.cy
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        inside = ((u / self.a) ** 2 + (v / self.b) ** 2 <= 1.0).astype(np.float32)
        patch = inside.reshape(py1 - py0, SUPERSAMPLE, px1 - px0, SUPERSAMPLE).mean(axis=(1, 3))
        out[py0:py1, px0:px1] = patch
        return out


def scene(size_px: float, dogs: int, rng: np.random.Generator) -> tuple[np.ndarray, sv.Detections, list[Ellipse]]:
    """A 1080p frame with ``dogs`` pairs of eyes of long axis ``size_px``: image, part rows, true shapes."""
    image = rng.integers(40, 200, (*FRAME_HW, 3), dtype=np.uint8)
    image[..., 0] = 0
    ellipses = []
    for dog in range(dogs):
        left = FRAME_HW[1] * (dog + 0.5) / dogs - 1.5 * size_px + rng.uniform(-50, 50)
        cy = rng.uniform(200, FRAME_HW[0] - 200)
        for eye in range(2):
            ellipses.append(
                Ellipse(
                    cx=left + 3 * size_px * eye + rng.uniform(0, 1),
                    cy=cy + rng.uniform(-0.2, 0.2) * size_px,
                    a=size_px / 2,
                    b=ELLIPSE_ASPECT * size_px / 2,
                    angle=rng.uniform(-0.35, 0.35),
                )
            )
    coverage = np.zeros(FRAME_HW, dtype=np.float32)
    for ellipse in ellipses:
        coverage = np.maximum(coverage, ellipse.coverage(FRAME_HW))
    image[..., 0] = np.round(coverage * 255).astype(np.uint8)
    parts = sv.Detections(
        xyxy=np.stack([e.box() for e in ellipses]),
        confidence=np.full(len(ellipses), 0.9, dtype=np.float32),
        class_id=np.zeros(len(ellipses), dtype=int),
        data={ANCHOR_INDEX_KEY: np.repeat(np.arange(dogs), 2)},
    )
    return image, parts, ellipses


def polygon_ious(out: sv.Detections, parts: sv.Detections, ellipses: list[Ellipse]) -> list[float]:
    """IoU of each part's rasterised polygon with its true shape; 0 for a part the segmenter dropped."""
    ious = []
    for row, ellipse in enumerate(ellipses):
        truth = ellipse.coverage(FRAME_HW) >= 0.5
        kept = np.flatnonzero((out.xyxy == parts.xyxy[row]).all(axis=1))
        if len(kept) == 0:
            ious.append(0.0)
            continue
        drawn = polygon_to_mask(out.data[POLYGON_KEY][kept[0]], *FRAME_HW)
        ious.append(float((drawn & truth).sum() / (drawn | truth).sum()))
    return ious


def _ideal_iou(scenes: list[tuple[np.ndarray, sv.Detections, list[Ellipse]]]) -> float:
    """Mean IoU of the polygon round trip of the true masks themselves (tolerance as the default config)."""
    tolerance_px = SegmentModelConfig().polygon_tolerance_px
    ious = []
    for _, _, ellipses in scenes:
        for ellipse in ellipses:
            truth = ellipse.coverage(FRAME_HW) >= 0.5
            drawn = polygon_to_mask(mask_to_polygon(truth, tolerance_px), *FRAME_HW)
            ious.append(float((drawn & truth).sum() / (drawn | truth).sum()))
    return round(float(np.mean(ious)), 3)


def oracle_segmenter(mode: str, **fields: Any) -> Sam2Segmenter:
    """The real Sam2Segmenter around an OraclePredictor (CPU, float32)."""
    cfg = SegmentModelConfig(mode=mode, **fields)
    return Sam2Segmenter(cfg, TargetConfig(), Runtime(device="cpu", dtype="float32"), predictor=OraclePredictor())


def bench_segment(sizes_px: tuple[float, ...] = SIZES_PX, frames: int = 4, dogs: int = 3, seed: int = 0) -> dict:
    """Polygon IoU with the truth per part size, full and crop mode on the same scenes (see module)."""
    segmenters = {mode: oracle_segmenter(mode) for mode in ("full", "crop")}
    rows = []
    for size in sizes_px:
        rng = np.random.default_rng(seed)
        scenes = [scene(size, dogs, rng) for _ in range(frames)]
        row: dict[str, Any] = {"size_px": size, "parts": frames * dogs * 2, "ideal_iou": _ideal_iou(scenes)}
        for mode, segmenter in segmenters.items():
            ious, points = [], []
            for image, parts, ellipses in scenes:
                out = segmenter.segment([image], [parts])[0]
                ious += polygon_ious(out, parts, ellipses)
                points += [len(p) for p in out.data[POLYGON_KEY]]
            row[f"{mode}_iou"] = round(float(np.mean(ious)), 3)
            row[f"{mode}_iou_min"] = round(float(np.min(ious)), 3)
            row[f"{mode}_dropped"] = int(sum(i == 0.0 for i in ious))
            row[f"{mode}_points"] = round(float(np.mean(points)), 1) if points else 0.0
        rows.append(row)
        log.info("segment bench %s px: %s", size, row)
    cfg = segmenters["crop"].cfg
    return {
        "frame": f"{FRAME_HW[1]}x{FRAME_HW[0]}",
        "sam2_image_size": SAM2_IMAGE_SIZE,
        "crop_context": cfg.crop_context,
        "crop_max_upscale": cfg.crop_max_upscale,
        "polygon_tolerance_px": cfg.polygon_tolerance_px,
        "sizes": rows,
    }
