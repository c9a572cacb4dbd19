"""Disagreement scores of one frame (streamlabel.student.compare): agreement, a mask disagreement, a part the
student misses, a part the pipeline misses, and the mask IoU they rest on."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from streamlabel.frames import POLYGON_KEY
from streamlabel.student.compare import anchor_of, mask_iou_matrix, score

SHAPE = (60, 100)


def boxes(rows: list[list[float]], confidence: list[float] | None = None, masks: bool = True) -> sv.Detections:
    """Detections whose masks fill their boxes."""
    n = len(rows)
    mask = np.zeros((n, *SHAPE), dtype=bool)
    for j, (x1, y1, x2, y2) in enumerate(np.asarray(rows, dtype=int).reshape(n, 4)):
        mask[j, y1:y2, x1:x2] = True
    return sv.Detections(
        xyxy=np.asarray(rows, dtype=np.float32).reshape(n, 4),
        mask=mask if masks else None,
        confidence=np.asarray(confidence if confidence is not None else [0.9] * n, dtype=np.float32),
    )


def test_agreement_scores_zero_and_nothing_is_missed() -> None:
    eye = [[10, 10, 20, 20]]
    d = score(boxes(eye), boxes([[10, 10, 20, 21]]), SHAPE, iou_threshold=0.5, match_iou=0.1)
    assert d.part_scores.tolist() == [0.0]
    assert d.missed.tolist() == [] and d.missed_scores.tolist() == []


def test_a_mask_disagreement_scores_one_minus_iou() -> None:
    # the same eye, the student's mask shifted by half its width: IoU = 50 / 150
    d = score(boxes([[10, 10, 20, 20]]), boxes([[15, 10, 25, 20]]), SHAPE, iou_threshold=0.5, match_iou=0.1)
    assert d.part_scores == pytest.approx([1 - 50 / 150])
    assert d.missed.tolist() == []  # the same part (boxes overlap by 1/3): not a part the pipeline missed


@pytest.mark.parametrize(("threshold", "expected"), [(0.49, 0.0), (0.5, 0.0), (0.51, 0.5)])
def test_the_iou_threshold_decides_what_disagrees(threshold: float, expected: float) -> None:
    # IoU 0.5 exactly (10x10 against 10x20): at the threshold they agree, above it they disagree by 1 - 0.5
    part, find = boxes([[10, 10, 20, 20]]), boxes([[10, 10, 20, 30]])
    d = score(part, find, SHAPE, iou_threshold=threshold, match_iou=0.1)
    assert d.part_scores == pytest.approx([expected])


def test_a_part_the_student_misses_scores_one() -> None:
    d = score(boxes([[10, 10, 20, 20], [40, 10, 50, 20]]), boxes([[10, 10, 20, 20]]), SHAPE, 0.5, 0.1)
    assert d.part_scores.tolist() == [0.0, 1.0]
    d = score(boxes([[10, 10, 20, 20]]), boxes([]), SHAPE, 0.5, 0.1)
    assert d.part_scores.tolist() == [1.0] and d.missed.tolist() == []


def test_a_part_only_the_student_finds_is_missed_with_its_confidence() -> None:
    parts = boxes([[10, 10, 20, 20]])
    finds = boxes([[10, 10, 20, 20], [60, 30, 70, 40], [12, 10, 22, 20]], confidence=[0.9, 0.7, 0.4])
    d = score(parts, finds, SHAPE, iou_threshold=0.5, match_iou=0.1)
    assert d.part_scores.tolist() == [0.0]
    assert d.missed.tolist() == [1]  # the third overlaps the pipeline's eye: the same part, not a new one
    assert d.missed_scores == pytest.approx([0.7])


def test_every_student_find_is_missed_in_a_frame_without_parts() -> None:
    d = score(boxes([]), boxes([[60, 30, 70, 40], [5, 5, 9, 9]], confidence=[0.3, 0.8]), SHAPE, 0.5, 0.1)
    assert d.part_scores.tolist() == [] and d.missed.tolist() == [0, 1]
    assert d.missed_scores == pytest.approx([0.3, 0.8])


def test_parts_without_masks_are_compared_by_their_polygons() -> None:
    part = boxes([[10, 10, 20, 20]], masks=False)
    part.data[POLYGON_KEY] = np.array([np.array([[15, 10], [25, 10], [25, 20], [15, 20]], np.float32)], dtype=object)
    d = score(part, boxes([[15, 10, 25, 20]]), SHAPE, 0.5, 0.1)
    assert d.part_scores == pytest.approx([0.0], abs=0.15)  # the polygon (not the box) is what the pipeline labels


def test_mask_iou_matches_a_brute_force_count() -> None:
    rng = np.random.default_rng(3)
    a = np.zeros((3, *SHAPE), dtype=bool)
    b = np.zeros((4, *SHAPE), dtype=bool)
    for stack in (a, b):
        for m in stack:  # speckled blobs in windows scattered over the frame (some meet, some do not)
            y, x = rng.integers(0, 45), rng.integers(0, 85)
            m[y : y + 15, x : x + 15] = rng.random((15, 15))[: SHAPE[0] - y, : SHAPE[1] - x] < 0.6
    b[3] = False  # an empty mask: IoU 0 with everything
    want = np.array([[(x & y).sum() / max((x | y).sum(), 1) for y in b] for x in a])
    np.testing.assert_allclose(mask_iou_matrix(a, b), want)
    assert (want > 0).any() and (want[:, :3] == 0).any()  # both cases: masks that meet and masks that do not


def test_a_find_belongs_to_the_anchor_holding_most_of_it() -> None:
    anchors = np.array([[0, 0, 50, 50], [40, 0, 100, 50]], dtype=np.float32)
    finds = np.array([[10, 10, 20, 20], [42, 10, 52, 20], [45, 45, 55, 70], [0, 55, 5, 60]], dtype=np.float32)
    # inside the first; mostly in the second; 20% inside (below INSIDE_ANCHOR); outside every anchor
    assert anchor_of(finds, anchors).tolist() == [0, 1, -1, -1]
    assert anchor_of(finds, np.zeros((0, 4))).tolist() == [-1, -1, -1, -1]
