"""Mask clean-up and mask <-> polygon <-> YOLO-seg conversion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlabel.stages.polygon import (
    _fill_holes,
    _largest_component,
    clean_mask,
    mask_to_polygon,
    mask_window,
    parse_yolo_line,
    polygon_to_mask,
    polygon_to_yolo_line,
)

H, W = 40, 50
DEFAULT_TOLERANCE_PX = 1.0


def _mask(*boxes: tuple[int, int, int, int], hw: tuple[int, int] = (H, W)) -> np.ndarray:
    """Bool mask with the given (x0, y0, x1, y1) half-open rectangles set."""
    mask = np.zeros(hw, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# --------------------------------------------------------------------------------------------- clean_mask


def _ring(hole_side: int) -> np.ndarray:
    """A 20x20 square at (10, 10) with a centred square hole of hole_side pixels a side."""
    mask = _mask((10, 10, 30, 30))
    start = 20 - hole_side // 2
    mask[start : start + hole_side, start : start + hole_side] = False
    return mask


@pytest.mark.parametrize(
    ("mask", "keep_largest", "fill_px", "expected"),
    [
        pytest.param(np.zeros((H, W), bool), True, 64, np.zeros((H, W), bool), id="empty"),
        pytest.param(_mask((5, 5, 15, 15)), True, 64, _mask((5, 5, 15, 15)), id="one-square-unchanged"),
        pytest.param(
            _mask((2, 2, 6, 6), (20, 10, 40, 30)),
            True,
            0,
            _mask((20, 10, 40, 30)),
            id="two-blobs-keeps-largest",
        ),
        pytest.param(
            _mask((2, 2, 6, 6), (20, 10, 40, 30)),
            False,
            0,
            _mask((2, 2, 6, 6), (20, 10, 40, 30)),
            id="two-blobs-kept-when-off",
        ),
        pytest.param(_ring(4), True, 16, _mask((10, 10, 30, 30)), id="16px-hole-filled-at-16"),
        pytest.param(_ring(4), True, 15, _ring(4), id="16px-hole-kept-at-15"),
        pytest.param(_ring(4), True, 0, _ring(4), id="holes-kept-at-0"),
        pytest.param(
            # a notch open to the image border is not a hole
            _mask((0, 0, 10, 10)) & ~_mask((0, 4, 3, 6)),
            True,
            64,
            _mask((0, 0, 10, 10)) & ~_mask((0, 4, 3, 6)),
            id="border-notch-not-a-hole",
        ),
    ],
)
def test_clean_mask(mask: np.ndarray, keep_largest: bool, fill_px: int, expected: np.ndarray) -> None:
    before = mask.copy()
    out = clean_mask(mask, keep_largest_component=keep_largest, fill_holes_px=fill_px)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(mask, before)  # the input is not modified


def test_clean_mask_fills_hole_before_dropping_the_speck_inside_it() -> None:
    ring = _ring(6)
    ring[19:21, 19:21] = True  # a 2x2 speck inside the 6x6 hole
    out = clean_mask(ring, keep_largest_component=True, fill_holes_px=64)
    np.testing.assert_array_equal(out, _mask((10, 10, 30, 30)))


# ----------------------------------------------------------------------------------------- mask_to_polygon


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        pytest.param(np.zeros((H, W), bool), np.zeros((0, 2)), id="empty"),
        pytest.param(_mask((3, 4, 4, 5)), np.zeros((0, 2)), id="single-pixel-too-few-points"),
        pytest.param(_mask((2, 3, 12, 4)), np.zeros((0, 2)), id="one-row-line-too-few-points"),
        # pixel indices of the corners: columns 2..5, rows 2..5
        pytest.param(_mask((2, 2, 6, 6)), [[2, 2], [2, 5], [5, 5], [5, 2]], id="square"),
        pytest.param(_mask((1, 1, 3, 3), (10, 10, 20, 14)), [[10, 10], [10, 13], [19, 13], [19, 10]], id="largest"),
        # a region touching the border ends on the last pixel index, never outside the image
        pytest.param(_mask((40, 30, 50, 40)), [[40, 30], [40, 39], [49, 39], [49, 30]], id="at-border"),
    ],
)
def test_mask_to_polygon(mask: np.ndarray, expected: list[list[int]]) -> None:
    polygon = mask_to_polygon(mask, DEFAULT_TOLERANCE_PX)
    assert polygon.dtype == np.float32
    assert polygon.ndim == 2 and polygon.shape[1] == 2
    np.testing.assert_array_equal(polygon, np.asarray(expected, dtype=np.float32).reshape(-1, 2))


def test_mask_to_polygon_in_a_large_frame_is_in_frame_pixels() -> None:
    mask = _mask((900, 500, 915, 512), (3, 3, 5, 5), hw=(1080, 1920))
    np.testing.assert_array_equal(mask_to_polygon(mask, 1.0), [[900, 500], [900, 511], [914, 511], [914, 500]])


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        pytest.param(_mask(), None, id="empty"),
        pytest.param(_mask((10, 5, 20, 8)), (slice(4, 9), slice(9, 21)), id="inside-one-pixel-wider"),
        pytest.param(_mask((0, 0, 1, 1), (45, 38, 50, 40)), (slice(0, 40), slice(0, 50)), id="cut-at-the-border"),
    ],
)
def test_mask_window(mask: np.ndarray, expected: tuple[slice, slice] | None) -> None:
    assert mask_window(mask) == expected


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hw=st.tuples(st.integers(2, 30), st.integers(2, 30)),
    density=st.floats(0.05, 0.9),
    keep_largest=st.booleans(),
    fill_px=st.sampled_from([0, 2, 64]),
)
def test_clean_mask_in_its_window_equals_the_whole_image(
    seed: int, hw: tuple[int, int], density: float, keep_largest: bool, fill_px: int
) -> None:
    """The window is an optimisation: the steps applied to the whole image give the same mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((hw[0] + 10, hw[1] + 10), dtype=bool)
    y, x = rng.integers(0, 11, 2)  # anywhere, touching the image border or not
    mask[y : y + hw[0], x : x + hw[1]] = rng.random(hw) < density
    whole = _fill_holes(mask, fill_px) if fill_px and mask.any() else mask
    whole = _largest_component(whole) if keep_largest and mask.any() else whole
    np.testing.assert_array_equal(clean_mask(mask, keep_largest, fill_px), whole)


def test_mask_to_polygon_tolerance_shortens_a_circle() -> None:
    mask = cv2.circle(np.zeros((H, W), np.uint8), (25, 20), 15, 1, -1).astype(bool)
    exact, coarse = mask_to_polygon(mask, 0.0), mask_to_polygon(mask, 3.0)
    assert len(coarse) < len(exact)
    assert len(coarse) >= 3


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        pytest.param(np.zeros((0, 2)), _mask(), id="empty"),
        pytest.param([[1, 1], [5, 1]], _mask(), id="two-points"),
        pytest.param([[2, 2], [2, 5], [5, 5], [5, 2]], _mask((2, 2, 6, 6)), id="square-includes-edges"),
    ],
)
def test_polygon_to_mask(polygon: np.ndarray, expected: np.ndarray) -> None:
    out = polygon_to_mask(np.asarray(polygon, dtype=np.float32), H, W)
    assert out.dtype == bool and out.shape == (H, W)
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------------------------- YOLO lines


@pytest.mark.parametrize(
    ("class_id", "polygon", "width", "height", "expected"),
    [
        pytest.param(
            0,
            [[10, 20], [30, 20], [30, 40]],
            100,
            50,
            "0 0.100000 0.400000 0.300000 0.400000 0.300000 0.800000",
            id="plain",
        ),
        pytest.param(
            3,
            [[-5, 0], [120, 10], [50, 60]],
            100,
            50,
            "3 0.000000 0.000000 1.000000 0.200000 0.500000 1.000000",
            id="clipped",
        ),
        pytest.param(
            1,
            [[1, 1], [2, 1], [2, 2]],
            3,
            3,
            "1 0.333333 0.333333 0.666667 0.333333 0.666667 0.666667",
            id="six-decimals",
        ),
    ],
)
def test_polygon_to_yolo_line(
    class_id: int, polygon: list[list[float]], width: int, height: int, expected: str
) -> None:
    assert polygon_to_yolo_line(class_id, np.asarray(polygon, np.float32), width, height) == expected


@pytest.mark.parametrize(
    ("polygon", "width", "height"),
    [
        pytest.param(np.zeros((0, 2)), 10, 10, id="empty"),
        pytest.param([[1, 1], [2, 2]], 10, 10, id="two-points"),
        pytest.param([[1, 1], [2, 2], [3, 1]], 0, 10, id="zero-width"),
    ],
)
def test_polygon_to_yolo_line_rejects(polygon: list[list[float]], width: int, height: int) -> None:
    with pytest.raises(ValueError):
        polygon_to_yolo_line(0, np.asarray(polygon, np.float32), width, height)


def test_yolo_line_round_trip() -> None:
    polygon = np.array([[10, 20], [30, 20], [30, 40], [12.5, 37.5]], dtype=np.float32)
    class_id, points = parse_yolo_line(polygon_to_yolo_line(7, polygon, 100, 50))
    assert class_id == 7
    assert points.dtype == np.float32
    np.testing.assert_allclose(points * np.array([100, 50]), polygon, atol=1e-4)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("", id="empty"),
        pytest.param("0", id="class-only"),
        pytest.param("0 0.1 0.2 0.3", id="odd-coordinates"),
        pytest.param("0 0.1 0.2 0.3 0.4", id="two-points"),
        pytest.param("dog 0.1 0.2 0.3 0.4 0.5 0.6", id="class-not-int"),
        pytest.param("0 0.1 0.2 0.3 x 0.5 0.6", id="coordinate-not-float"),
    ],
)
def test_parse_yolo_line_rejects(line: str) -> None:
    with pytest.raises(ValueError):
        parse_yolo_line(line)


# --------------------------------------------------------------------------------------------- property


ellipses = st.fixed_dictionaries(
    {
        "cx": st.integers(30, 98),
        "cy": st.integers(30, 98),
        "a": st.integers(10, 30),  # semi-axes >= 10 px: at least ~20 px across
        "b": st.integers(10, 30),
        "angle": st.floats(0, 180),
    }
)


@settings(max_examples=60, deadline=None)
@given(ellipses)
def test_polygon_of_an_ellipse_covers_it(e: dict[str, float]) -> None:
    size = 128
    mask = cv2.ellipse(
        np.zeros((size, size), np.uint8), (e["cx"], e["cy"]), (e["a"], e["b"]), e["angle"], 0, 360, 1, -1
    ).astype(bool)
    polygon = mask_to_polygon(mask, DEFAULT_TOLERANCE_PX)
    assert len(polygon) >= 3
    assert (polygon >= 0).all() and (polygon[:, 0] < size).all() and (polygon[:, 1] < size).all()
    assert _iou(polygon_to_mask(polygon, size, size), mask) >= 0.9
