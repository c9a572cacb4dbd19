"""MatchRounds: association in rounds over what earlier rounds left, and a centre distance per track."""

from __future__ import annotations

import numpy as np

from streamlabel.tracking.association import MatchRounds, associate

A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 50.0, 60.0, 60.0]
A_NEXT = [12.0, 0.0, 22.0, 10.0]  # no overlap with A, centres 12 px apart, diagonals 14.1 px: ratio 0.85


def test_each_round_matches_only_what_is_still_free() -> None:
    rounds = MatchRounds(np.array([A, B]), np.array([A, B, A]))
    rounds.run([2], 0.3, 0.0)  # the third detection takes track 0
    rounds.run([0, 1], 0.3, 0.0)  # detection 0 finds track 0 taken; detection 1 takes track 1
    assert sorted(rounds.pairs) == [(0, 2), (1, 1)]
    assert rounds.free_tracks() == [] and rounds.matched_detections == {1, 2}


def test_a_round_can_match_tracks_at_other_boxes() -> None:
    rounds = MatchRounds(np.array([B, B]), np.array([A]))
    rounds.run([0], 0.3, 0.0)
    assert rounds.pairs == []
    rounds.run([0], 0.3, 0.0, boxes={1: np.array(A)})  # only track 1, placed at A
    assert rounds.pairs == [(1, 0)]


def test_centre_distance_may_differ_per_track() -> None:
    tracks, detections = np.array([A, A]), np.array([A_NEXT])
    assert associate(tracks, detections, 0.3, np.array([0.5, 1.0])).matches.tolist() == [[1, 0]]
    assert associate(tracks, detections, 0.3, np.array([0.5, 0.5])).matches.tolist() == []
    rounds = MatchRounds(tracks, detections)
    rounds.run([0], 0.3, np.array([1.0, 0.0]))
    assert rounds.pairs == [(0, 0)]


def test_classes_are_kept_apart_in_every_round() -> None:
    rounds = MatchRounds(np.array([A]), np.array([A]), np.array([1]), np.array([2]))
    rounds.run([0], 0.3, 1.0)
    assert rounds.pairs == [] and rounds.free_tracks() == [0]
