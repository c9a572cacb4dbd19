"""Mask consistency on masks moved by a known motion: hand-computed affine maps and IoU scores."""

from __future__ import annotations

import numpy as np
import pytest

from streamlabel.tracking.consistency import box_affine, consistency_score, mask_iou, warp_mask

SHAPE = (100, 120)


def square(x1: int, y1: int, x2: int, y2: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        pytest.param([10, 10, 20, 20], [10, 10, 20, 20], [[1, 0, 0], [0, 1, 0]], id="still"),
        pytest.param([10, 10, 20, 20], [15, 7, 25, 17], [[1, 0, 5], [0, 1, -3]], id="translate"),
        # scale 2 on both axes about the origin, then x: 30 - 2*10 = 10, y: 40 - 2*10 = 20
        pytest.param([10, 10, 20, 20], [30, 40, 50, 60], [[2, 0, 10], [0, 2, 20]], id="scale-and-translate"),
        pytest.param([10, 10, 10, 20], [12, 10, 12, 30], [[1, 0, 2], [0, 2, -10]], id="zero-width-only-translates-x"),
    ],
)
def test_box_affine(src, dst, expected) -> None:
    np.testing.assert_allclose(box_affine(np.array(src), np.array(dst)), expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(square(0, 0, 10, 10), square(0, 0, 10, 10), 1.0, id="same"),
        pytest.param(square(0, 0, 10, 10), square(5, 0, 15, 10), 50 / 150, id="half-shifted"),
        pytest.param(square(0, 0, 10, 10), square(20, 20, 30, 30), 0.0, id="apart"),
        pytest.param(np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), 1.0, id="both-empty"),
        pytest.param(np.zeros(SHAPE, bool), square(0, 0, 2, 2), 0.0, id="one-empty"),
    ],
)
def test_mask_iou(a, b, expected: float) -> None:
    assert mask_iou(a, b) == pytest.approx(expected)


def test_an_integer_translation_moves_the_mask_exactly() -> None:
    moved = warp_mask(square(10, 20, 30, 40), np.array([[1.0, 0, 7], [0, 1.0, -5]]), SHAPE)
    np.testing.assert_array_equal(moved, square(17, 15, 37, 35))


@pytest.mark.parametrize(
    ("new_mask", "new_box", "expected"),
    [
        # The eye moved 8 px right and its mask with it: consistent.
        pytest.param(square(18, 20, 28, 30), [18, 20, 28, 30], 1.0, id="moved-with-the-box"),
        # The box moved 8 px but the mask stayed behind: overlap 2 of 10 columns, IoU 20 / 180.
        pytest.param(square(10, 20, 20, 30), [18, 20, 28, 30], 20 / 180, id="mask-left-behind"),
        # The box doubled (the dog came closer) and the mask doubled with it.
        pytest.param(square(20, 40, 40, 60), [20, 40, 40, 60], 1.0, id="scaled-with-the-box"),
        # The mask jumped to the other eye 30 px away while the track's box stayed: no overlap.
        pytest.param(square(40, 20, 50, 30), [10, 20, 20, 30], 0.0, id="jumped-to-the-other-eye"),
        # A blink: the mask lost its top 6 rows, IoU 40 / 100.
        pytest.param(square(10, 26, 20, 30), [10, 20, 20, 30], 0.4, id="blink"),
    ],
)
def test_consistency_score_on_known_motion(new_mask: np.ndarray, new_box, expected: float) -> None:
    previous_mask, previous_box = square(10, 20, 20, 30), np.array([10.0, 20.0, 20.0, 30.0])
    score = consistency_score(previous_mask, previous_box, new_mask, np.array(new_box, dtype=float))
    assert score == pytest.approx(expected, abs=0.02)


def test_the_window_gives_the_full_frame_answer() -> None:
    """The score works on a window around the masks; it must equal the IoU computed on the whole frame."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y, side = rng.integers(5, 60), rng.integers(5, 40), rng.integers(3, 20)
        previous = square(x, y, x + side, y + side)
        previous_box = np.array([x, y, x + side, y + side], dtype=float)
        box = previous_box * rng.uniform(0.8, 1.3) + rng.uniform(-5, 5, 4)
        new = square(*np.clip(np.round(box + rng.uniform(-3, 3, 4)), 0, 99).astype(int))
        full = mask_iou(warp_mask(previous, box_affine(previous_box, box), SHAPE), new)
        assert consistency_score(previous, previous_box, new, box) == pytest.approx(full)


def test_a_mask_moving_off_the_frame_scores_against_what_is_left() -> None:
    previous = square(100, 10, 110, 20)  # 10x10 at the right edge (width 120)
    moved_box = np.array([115.0, 10.0, 125.0, 20.0])  # half of it now outside the frame
    assert consistency_score(previous, np.array([100.0, 10.0, 110.0, 20.0]), square(115, 10, 120, 20), moved_box) == 1.0
