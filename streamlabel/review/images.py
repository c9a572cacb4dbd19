"""The pictures of the review page: a frame's unpainted copy, and a zoomed part thumbnail with its mask drawn in.

Thumbnails are rendered once per part and frame revision (``frames.rev``, bumped by every re-render) and cached
under ``<store>/.review-cache/`` as hidden files, which ``check_store`` and the exports ignore.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from streamlabel.store.dataset import DatasetStore
from streamlabel.store.reviews import ReviewItem
from streamlabel.store.rows import decode_jpeg, encode_jpeg
from streamlabel.store.staging import atomic_write

log = logging.getLogger(__name__)

CACHE_DIR = ".review-cache"
MASK_RGB = (255, 40, 40)


def frame_path(store: DatasetStore, item: ReviewItem) -> Path:
    """The file of the frame's unpainted copy (else its painted dataset copy); FileNotFoundError when neither."""
    frame = store.manifest.frame(item.frame_id)
    if frame is None:
        raise FileNotFoundError(f"frame {item.frame_id} is no longer in the manifest of {store.root}")
    try:
        return store.root / store.unpainted_copy(frame, store.manifest.labels_of(item.frame_id))
    except FileNotFoundError:
        if frame["image"] and (store.root / frame["image"]).is_file():
            return store.root / frame["image"]  # a decided frame with painted ignore regions: still worth a look
        raise


def thumbnail(store: DatasetStore, item: ReviewItem, size_px: int) -> bytes:
    """JPEG of the part zoomed (its box with as much context around it) with the mask overlaid; cached."""
    cache = store.root / CACHE_DIR / f".{item.id}-{item.rev}-{size_px}.jpg"
    if cache.is_file():
        return cache.read_bytes()
    image = decode_jpeg(frame_path(store, item).read_bytes())
    if image is None:
        raise FileNotFoundError(f"frame {item.frame_id}: its image does not decode as JPEG")
    data = encode_jpeg(_zoomed(image, item, size_px), 85, f"thumbnail of item {item.id}")
    atomic_write(cache, data)
    return data


def _zoomed(image: np.ndarray, item: ReviewItem, size_px: int) -> np.ndarray:
    """A square crop around the part box (twice its size, at least 48 px), resized to ``size_px``, mask drawn."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = json.loads(item.xyxy)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1, 24.0)
    c1, r1 = int(max(cx - half, 0)), int(max(cy - half, 0))
    c2, r2 = int(min(cx + half, w)), int(min(cy + half, h))
    crop = np.ascontiguousarray(image[r1:r2, c1:c2])
    poly = np.asarray(json.loads(item.polygon), np.float64).reshape(-1, 2) * [w, h] - [c1, r1]
    scale = size_px / max(crop.shape[0], crop.shape[1], 1)
    out = cv2.resize(crop, (max(int(crop.shape[1] * scale), 1), max(int(crop.shape[0] * scale), 1)))
    pts = np.round(poly * scale).astype(np.int32)
    if len(pts) >= 3:
        fill = out.copy()
        cv2.fillPoly(fill, [pts], MASK_RGB)
        out = cv2.addWeighted(fill, 0.35, out, 0.65, 0)
        cv2.polylines(out, [pts], True, MASK_RGB, 1, cv2.LINE_AA)
    canvas = np.full((size_px, size_px, 3), 24, np.uint8)
    oy, ox = (size_px - out.shape[0]) // 2, (size_px - out.shape[1]) // 2
    canvas[oy : oy + out.shape[0], ox : ox + out.shape[1]] = out
    return canvas
