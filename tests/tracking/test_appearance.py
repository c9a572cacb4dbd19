"""A part's look: patches robust to box jitter, not to an eye that closes; reuse needs the look to stay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamlabel.tracking.appearance import appearance_patch, patch_similarity


def eye_frame(open_eye: bool, shift_px: tuple[int, int] = (0, 0), seed: int = 0) -> np.ndarray:
    """Fur with noise and an eye at (100, 60): a dark ellipse, or a slit when closed."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(150, 6, (120, 200, 3)), 0, 255).astype(np.uint8)
    cx, cy = 100 + shift_px[0], 60 + shift_px[1]
    axes = (12, 8) if open_eye else (12, 1)
    cv2.ellipse(image, (cx, cy), axes, 0, 0, 360, (25, 20, 20), -1)
    cv2.circle(image, (cx + 3, cy - 2), 2 if open_eye else 0, (230, 230, 230), -1)
    return image


BOX = np.array([86.0, 50.0, 114.0, 70.0])


@pytest.mark.parametrize("shift", [(0, 0), (1, 0), (2, -1), (-2, 2)])
def test_the_same_eye_looks_alike_under_jitter(shift: tuple[int, int]) -> None:
    reference = appearance_patch(eye_frame(True), BOX)
    moved = appearance_patch(eye_frame(True, shift, seed=1), BOX)
    assert patch_similarity(reference, moved) >= 0.85


def test_a_closed_eye_does_not_look_like_the_open_one() -> None:
    reference = appearance_patch(eye_frame(True), BOX)
    assert patch_similarity(reference, appearance_patch(eye_frame(False, seed=1), BOX)) < 0.6


def test_flat_patches() -> None:
    gray = np.full((120, 200, 3), 100, np.uint8)
    brighter = np.full((120, 200, 3), 140, np.uint8)
    reference = appearance_patch(gray, BOX)
    assert patch_similarity(reference, appearance_patch(gray, BOX)) == 1.0
    assert patch_similarity(reference, appearance_patch(brighter, BOX)) == 0.0
    assert patch_similarity(appearance_patch(eye_frame(True), BOX), appearance_patch(gray, BOX)) == 0.0
    empty = appearance_patch(gray, np.array([500.0, 500.0, 510.0, 510.0]))  # outside the frame
    assert empty.shape == reference.shape and not empty.any()


def test_reuse_is_refused_when_the_part_no_longer_looks_the_same() -> None:
    import supervision as sv

    from streamlabel.config import TrackingConfig
    from streamlabel.stages.base import Verdict
    from streamlabel.tracking.streams import StreamTracks

    tracks = StreamTracks("cam", TrackingConfig(revalidate_s=10.0))
    mask = np.zeros((1, 120, 200), bool)
    mask[0, 52:68, 88:112] = True
    parts = sv.Detections(xyxy=BOX[None].astype(np.float32), mask=mask, tracker_id=np.array([4]))
    tracks.adopt_references(parts, [0], eye_frame(True))
    tracks.remember(4, 0.0, 1, Verdict(True, 0.95, {"part_visible": True}))
    same = tracks.appearance(4, eye_frame(True, (1, 1), seed=2), BOX)
    closed = tracks.appearance(4, eye_frame(False, seed=2), BOX)
    assert tracks.reusable(4, 0.5, 1.0, 1, same) is not None
    assert tracks.reusable(4, 1.0, 1.0, 1, closed) is None  # consistent mask (score 1.0), but the eye closed
    assert tracks.appearance(99, eye_frame(True), BOX) != tracks.appearance(99, eye_frame(True), BOX)  # NaN: no ref
