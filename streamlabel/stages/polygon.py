"""Mask clean-up and mask <-> polygon <-> YOLO-seg line conversion (numpy and OpenCV only).

Polygons are float32 ``(K, 2)`` arrays of ``(x, y)`` pixel coordinates (pixel indices, as OpenCV
contours give them); an empty polygon is a ``(0, 2)`` array. YOLO-seg lines hold the same points divided by
the image width and height.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import supervision as sv

log = logging.getLogger(__name__)

MIN_POLYGON_POINTS = 3
YOLO_DECIMALS = 6
FOREGROUND_CONNECTIVITY = 8  # a mask region is 8-connected, so the background between regions is 4-connected
BACKGROUND_CONNECTIVITY = 4


def empty_polygon() -> np.ndarray:
    """A polygon with no points: float32 array of shape (0, 2)."""
    return np.zeros((0, 2), dtype=np.float32)


def clean_mask(mask: np.ndarray, keep_largest_component: bool, fill_holes_px: int) -> np.ndarray:
    """Fill small holes, then optionally keep only the largest region; returns a new (H, W) bool mask.

    A hole is a background region that does not touch the image border; holes of at most ``fill_holes_px``
    pixels are filled (0 keeps every hole). Holes are filled first so that a speck inside a small hole merges
    with the region around it instead of being dropped. The work is done on the mask's bounding box (one pixel
    wider), which gives the same result as the whole image at a fraction of the cost for a small part.
    """
    out = np.asarray(mask).astype(bool)
    window = mask_window(out)
    if window is None:
        return out
    sub = out[window]
    if fill_holes_px > 0:
        sub = _fill_holes(sub, fill_holes_px)
    if keep_largest_component:
        sub = _largest_component(sub)
    out = np.zeros_like(out)
    out[window] = sub
    return out


def mask_window(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Rows and columns of the mask's bounding box grown by one pixel (within the image); None when empty.

    Outside the box everything is background and 4-connected to the image border, and the one-pixel ring
    (or the image border) carries that to the window's edge: holes, regions and contours found in the window
    are the ones found in the whole mask.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    height, width = mask.shape
    return (
        slice(max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, height)),
        slice(max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, width)),
    )


# supervision has no size-bounded hole filling nor a largest-region filter, so both use connectedComponents.
def _fill_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~mask).astype(np.uint8), connectivity=BACKGROUND_CONNECTIVITY
    )
    if count <= 1:
        return mask
    height, width = mask.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]
    inside = (x > 0) & (y > 0) & (right < width) & (bottom < height)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    fill = inside & small
    fill[0] = False  # label 0 is the mask itself (background of the inverted image)
    return mask | fill[labels]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    # Wu's (SAUF) labelling numbers regions in raster order of their first pixel, so a tie in area goes to the
    # top-most region wherever the mask sits (the default block-based algorithm numbers them otherwise)
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask.astype(np.uint8), FOREGROUND_CONNECTIVITY, cv2.CV_32S, cv2.CCL_WU
    )
    if count <= 2:  # background plus at most one region
        return mask
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def mask_to_polygon(mask: np.ndarray, tolerance_px: float) -> np.ndarray:
    """Outline of the mask's largest outer region, simplified to within ``tolerance_px`` pixels.

    Returns float32 ``(K, 2)`` pixel coordinates, or an empty ``(0, 2)`` array when the mask is empty or the
    outline has fewer than 3 points. ``tolerance_px`` 0 keeps every contour vertex. Holes are not represented.
    Contours are traced in the mask's bounding box (``mask_window``) and shifted back to image pixels.
    """
    full = np.asarray(mask).astype(bool)
    window = mask_window(full)
    if window is None:
        return empty_polygon()
    offset = np.array([window[1].start, window[0].start], dtype=np.int32)
    polygons = [p + offset for p in sv.mask_to_polygons(full[window])]
    if not polygons:
        return empty_polygon()
    largest = max(polygons, key=lambda p: cv2.contourArea(p.astype(np.float32)))
    if tolerance_px > 0:
        largest = cv2.approxPolyDP(largest.reshape(-1, 1, 2), tolerance_px, True).reshape(-1, 2)
    if len(largest) < MIN_POLYGON_POINTS:
        return empty_polygon()
    return largest.astype(np.float32)


def polygon_to_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterize a pixel-coordinate polygon to a (height, width) bool mask; under 3 points give all False."""
    return sv.polygon_to_mask(np.asarray(polygon, dtype=np.float32), (width, height)).astype(bool)


def polygon_to_yolo_line(class_id: int, polygon: np.ndarray, width: int, height: int) -> str:
    """YOLO-seg label line ``"cls x1 y1 x2 y2 ..."``: points divided by width/height, clipped to [0, 1].

    Raises ValueError when the polygon has fewer than 3 points or the image size is not positive.
    """
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(points) < MIN_POLYGON_POINTS:
        raise ValueError(f"a YOLO-seg polygon needs at least {MIN_POLYGON_POINTS} points (got {len(points)})")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive (got width={width}, height={height})")
    normalized = np.clip(points / np.array([width, height], dtype=np.float64), 0.0, 1.0)
    coords = " ".join(f"{value:.{YOLO_DECIMALS}f}" for value in normalized.ravel())
    return f"{int(class_id)} {coords}"


def parse_yolo_line(line: str) -> tuple[int, np.ndarray]:
    """Parse a YOLO-seg line into ``(class_id, float32 (K, 2) normalized points)``.

    Raises ValueError for a line without a class, with an odd number of coordinates or fewer than 3 points.
    """
    fields = line.split()
    if not fields:
        raise ValueError("empty YOLO-seg line")
    try:
        class_id = int(fields[0])
        values = np.array([float(v) for v in fields[1:]], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"not a YOLO-seg line ({exc}): {line!r}") from None
    if len(values) % 2:
        raise ValueError(f"YOLO-seg line has an odd number of coordinates ({len(values)}): {line!r}")
    points = values.reshape(-1, 2)
    if len(points) < MIN_POLYGON_POINTS:
        raise ValueError(f"YOLO-seg polygon needs at least {MIN_POLYGON_POINTS} points (got {len(points)})")
    return class_id, points
