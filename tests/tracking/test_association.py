"""associate(): Hungarian matching on IoU with the centre-distance fallback for small boxes."""

from __future__ import annotations

import numpy as np
import pytest

from streamlabel.tracking.association import associate, centre_distance_matrix, iou_matrix

IOU = 0.3
CENTRE = 1.0
EMPTY = np.empty((0, 4))
A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 50.0, 60.0, 60.0]
EYE = [0.0, 0.0, 4.0, 4.0]
EYE_NEXT = [5.0, 0.0, 9.0, 4.0]  # no overlap with EYE; centres 5 px apart, diagonals 4√2 ≈ 5.66 px: ratio 0.88


@pytest.mark.parametrize(
    ("tracks", "detections", "centre", "matches", "lost", "new"),
    [
        pytest.param(EMPTY, EMPTY, CENTRE, [], [], [], id="empty-both"),
        pytest.param(EMPTY, [A, B], CENTRE, [], [], [0, 1], id="no-tracks-all-born"),
        pytest.param([A, B], EMPTY, CENTRE, [], [0, 1], [], id="no-detections-all-lost"),
        pytest.param([A, B], [B, A], CENTRE, [[1, 0], [0, 1]], [], [], id="one-to-one-reordered"),
        pytest.param([EYE], [EYE_NEXT], CENTRE, [[0, 0]], [], [], id="small-boxes-by-centre"),
        pytest.param([EYE], [EYE_NEXT], 0.0, [], [0], [0], id="fallback-off"),
        pytest.param([EYE], [[100.0, 100.0, 104.0, 104.0]], CENTRE, [], [0], [0], id="far-box-unmatched"),
        pytest.param(
            [A], [[12.0, 0.0, 22.0, 10.0], [4.0, 0.0, 14.0, 10.0]], CENTRE, [[0, 1]], [], [0], id="overlap-beats-close"
        ),
    ],
)
def test_associate(tracks, detections, centre: float, matches, lost, new) -> None:
    result = associate(np.array(tracks).reshape(-1, 4), np.array(detections).reshape(-1, 4), IOU, centre)
    np.testing.assert_array_equal(result.matches, np.array(matches, dtype=int).reshape(-1, 2))
    np.testing.assert_array_equal(result.unmatched_tracks, lost)
    np.testing.assert_array_equal(result.unmatched_detections, new)


def test_classes_never_match_each_other() -> None:
    result = associate(np.array([A]), np.array([A]), IOU, CENTRE, np.array([0]), np.array([1]))
    assert result.matches.shape == (0, 2)
    np.testing.assert_array_equal(result.unmatched_detections, [0])


@pytest.mark.parametrize(
    ("tracks", "detections", "expected"),
    [
        (EMPTY, EMPTY, np.zeros((0, 0))),
        ([A], EMPTY, np.zeros((1, 0))),
        ([A], [[5.0, 0.0, 15.0, 10.0]], [[50.0 / 150.0]]),  # half overlap: 50 / (100 + 100 - 50)
        ([A], [A, B], [[1.0, 0.0]]),
    ],
)
def test_iou_matrix(tracks, detections, expected) -> None:
    got = iou_matrix(np.array(tracks).reshape(-1, 4), np.array(detections).reshape(-1, 4))
    np.testing.assert_allclose(got, np.array(expected).reshape(got.shape), atol=1e-6)


def test_centre_distance_is_in_diagonals() -> None:
    got = centre_distance_matrix(np.array([EYE]), np.array([EYE_NEXT, EYE]))
    np.testing.assert_allclose(got, [[5.0 / np.sqrt(32.0), 0.0]])
