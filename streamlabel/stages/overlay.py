"""What the validator sees: the frame with the part mask in red, and a zoomed crop around the part.

Images are RGB uint8 throughout. supervision's annotators draw on BGR numpy arrays, so the frame is flipped to BGR
for drawing and back afterwards.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from streamlabel.stages.base import Candidate

CROP_SIDE_PX = 448
"""Longer side of the zoomed crop after upscaling (typical VLM input tiles are 384-448 px)."""

MASK_OPACITY = 0.45
"""Opacity of the red fill: high enough to see, low enough that the part shows through."""

OUTLINE_PX = 2
"""Thickness of the red mask outline on the full frame."""

JPEG_QUALITY = 90
"""Quality of the JPEGs sent to the model; artefacts below ~85 blur thin mask edges."""


def render_views(candidate: Candidate, crop_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (full frame with the part mask in red, zoomed crop around the part), both RGB uint8.

    The crop is the part box grown ``crop_scale`` times about its centre, made square, clipped to the frame and
    upscaled so its longer side is ``CROP_SIDE_PX``. A candidate without a mask is drawn without overlay.
    """
    frame = draw_mask(candidate.image, candidate.part)
    crop = zoomed_crop(frame, candidate.part.xyxy[0], crop_scale)
    return frame, crop


def draw_mask(image_rgb: np.ndarray, part: sv.Detections) -> np.ndarray:
    """Return a copy of the frame with every mask of ``part`` filled semi-transparent red and outlined."""
    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    if part.mask is not None and len(part) > 0:
        fill = sv.MaskAnnotator(color=sv.Color.RED, opacity=MASK_OPACITY, color_lookup=sv.ColorLookup.INDEX)
        outline = sv.PolygonAnnotator(color=sv.Color.RED, thickness=OUTLINE_PX, color_lookup=sv.ColorLookup.INDEX)
        bgr = outline.annotate(fill.annotate(bgr, part), part)
    return np.ascontiguousarray(bgr[..., ::-1])


def crop_box(xyxy: np.ndarray, crop_scale: float, resolution_wh: tuple[int, int]) -> np.ndarray:
    """Square box of side ``crop_scale`` x the part box's longer side, centred on it, clipped; int xyxy."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    side = max(x2 - x1, y2 - y1, 1.0) * crop_scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    square = np.array([[cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]])
    clipped = sv.clip_boxes(square, resolution_wh)[0]
    box = np.round(clipped).astype(int)
    box[2:] = np.maximum(box[2:], box[:2] + 1)  # never empty, even for a degenerate box on the border
    return box


def zoomed_crop(image_rgb: np.ndarray, xyxy: np.ndarray, crop_scale: float) -> np.ndarray:
    """Crop around ``xyxy`` (see ``crop_box``) and upscale it so its longer side is ``CROP_SIDE_PX``."""
    height, width = image_rgb.shape[:2]
    x1, y1, x2, y2 = crop_box(xyxy, crop_scale, (width, height))
    crop = image_rgb[y1:y2, x1:x2]
    scale = CROP_SIDE_PX / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)


def encode_jpeg(image_rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"could not encode an image of shape {image_rgb.shape} as JPEG")
    return buffer.tobytes()
