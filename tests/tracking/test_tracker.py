"""Tracker: ids, lifetimes in seconds, crossing paths, small boxes, independence of instances, reset()."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from streamlabel.tracking import SMOOTHED_KEY, UNCONFIRMED, Tracker, TrackerConfig

STEP_S = 0.5  # 2 fps sampling
STILL = [100.0, 100.0, 140.0, 130.0]


def _detections(boxes: list[list[float]], class_ids: list[int] | None = None) -> sv.Detections:
    xyxy = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(xyxy)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.linspace(0.9, 0.5, n, dtype=np.float32),
        class_id=None if class_ids is None else np.array(class_ids, dtype=int),
        data={"class_name": np.array(["dog"] * n)},
    )


def _run(tracker: Tracker, frames: list[list[list[float]]], start_t: float = 0.0) -> list[list[int]]:
    """Feed one frame per STEP_S seconds; return the tracker ids of every frame."""
    return [
        tracker.update(_detections(boxes), start_t + i * STEP_S).tracker_id.tolist() for i, boxes in enumerate(frames)
    ]


@pytest.mark.parametrize(
    ("frames", "min_hits", "expected"),
    [
        pytest.param([[], []], 3, [[], []], id="empty"),
        pytest.param([[STILL]] * 4, 1, [[1]] * 4, id="confirmed-at-once"),
        pytest.param([[STILL]] * 4, 3, [[UNCONFIRMED], [UNCONFIRMED], [1], [1]], id="confirmed-on-third-hit"),
        pytest.param([[STILL], [], [STILL], [STILL]], 2, [[-1], [], [-1], [1]], id="tentative-dies-on-a-miss"),
    ],
)
def test_ids_wait_for_min_hits(frames, min_hits: int, expected) -> None:
    assert _run(Tracker(TrackerConfig(min_hits=min_hits)), frames) == expected


def test_output_keeps_rows_and_data() -> None:
    detections = _detections([STILL, [0.0, 0.0, 10.0, 10.0]], class_ids=[16, 16])
    out = Tracker(TrackerConfig(min_hits=1)).update(detections, 0.0)
    np.testing.assert_array_equal(out.xyxy, detections.xyxy)
    np.testing.assert_array_equal(out.confidence, detections.confidence)
    np.testing.assert_array_equal(out.data["class_name"], ["dog", "dog"])
    assert out.tracker_id.tolist() == [1, 2]
    np.testing.assert_allclose(out.data[SMOOTHED_KEY], detections.xyxy)
    assert detections.tracker_id is None and SMOOTHED_KEY not in detections.data  # the input is not changed


def test_empty_update_returns_empty_columns() -> None:
    out = Tracker().update(sv.Detections.empty(), 0.0)
    assert out.tracker_id.shape == (0,)
    assert out.data[SMOOTHED_KEY].shape == (0, 4)


def test_crossing_paths_keep_their_ids() -> None:
    """A moves right, B moves left, they overlap at frame 5; rows come in alternating order."""
    frames = []
    for i in range(11):
        a = [10.0 * i, 0.0, 10.0 * i + 20.0, 20.0]
        b = [100.0 - 10.0 * i, 10.0, 120.0 - 10.0 * i, 30.0]
        frames.append([a, b] if i % 2 == 0 else [b, a])
    ids = _run(Tracker(TrackerConfig(min_hits=3)), frames)
    a_ids = [row[0] if i % 2 == 0 else row[1] for i, row in enumerate(ids)]
    b_ids = [row[1] if i % 2 == 0 else row[0] for i, row in enumerate(ids)]
    assert a_ids[2:] == [1] * 9
    assert b_ids[2:] == [2] * 9


@pytest.mark.parametrize(
    ("max_age_s", "alive_after_s", "dead_after_s"),
    [(1.0, 1.0, 1.5), (2.0, 2.0, 2.5), (0.0, 0.0, 0.5)],
)
def test_track_dies_after_max_age_s_and_a_return_is_a_new_birth(
    max_age_s: float, alive_after_s: float, dead_after_s: float
) -> None:
    tracker = Tracker(TrackerConfig(max_age_s=max_age_s, min_hits=1))
    assert _run(tracker, [[STILL], [STILL]]) == [[1], [1]]
    last_seen = STEP_S
    np.testing.assert_allclose(tracker.predict(last_seen + alive_after_s), [STILL], atol=0.5)
    assert tracker.live_ids(last_seen + alive_after_s).tolist() == [1]
    assert tracker.predict(last_seen + dead_after_s).shape == (0, 4)
    tracker.update(_detections([]), last_seen + dead_after_s)
    assert tracker.update(_detections([STILL]), last_seen + dead_after_s + STEP_S).tracker_id.tolist() == [2]


def test_a_miss_within_max_age_keeps_the_id() -> None:
    ids = _run(Tracker(TrackerConfig(max_age_s=1.0, min_hits=1)), [[STILL], [], [], [STILL]])
    assert ids == [[1], [], [], [1]]


@pytest.mark.parametrize(("centre_distance", "expected_ids"), [(1.0, [1] * 6), (0.0, [1, 2, 3, 4, 5, 6])])
def test_small_boxes_that_never_overlap_follow_by_centre(centre_distance: float, expected_ids: list[int]) -> None:
    """A 6x6 eye moves 8 px per frame: consecutive boxes never overlap (IoU 0), centres are 0.94 diagonals apart."""
    frames = [[[8.0 * i, 50.0, 8.0 * i + 6.0, 56.0]] for i in range(6)]
    ids = _run(Tracker(TrackerConfig(min_hits=1, centre_distance=centre_distance)), frames)
    assert [row[0] for row in ids] == expected_ids


def test_other_classes_start_their_own_tracks() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    assert tracker.update(_detections([STILL], [0]), 0.0).tracker_id.tolist() == [1]
    assert tracker.update(_detections([STILL], [1]), STEP_S).tracker_id.tolist() == [2]


def test_two_trackers_have_independent_ids() -> None:
    first, second = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    far = [300.0, 300.0, 340.0, 330.0]
    assert first.update(_detections([STILL, far]), 0.0).tracker_id.tolist() == [1, 2]
    assert second.update(_detections([far]), 0.0).tracker_id.tolist() == [1]
    assert first.update(_detections([STILL, far]), STEP_S).tracker_id.tolist() == [1, 2]


def test_reset_restarts_ids_and_time() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    _run(tracker, [[STILL, [0.0, 0.0, 10.0, 10.0]]], start_t=10.0)
    tracker.reset()
    assert tracker.predict(0.0).shape == (0, 4)
    assert tracker.update(_detections([[0.0, 0.0, 10.0, 10.0]]), 0.0).tracker_id.tolist() == [1]


def test_predict_changes_nothing_and_follows_motion() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    frames = [[[20.0 * i, 0.0, 20.0 * i + 40.0, 10.0]] for i in range(5)]  # 40 px/s to the right
    _run(tracker, frames)
    t_next = 5 * STEP_S
    expected = [[100.0, 0.0, 140.0, 10.0]]
    np.testing.assert_allclose(tracker.predict(t_next), expected, atol=1.0)
    np.testing.assert_allclose(tracker.predict(t_next), expected, atol=1.0)  # asking twice gives the same answer
    assert tracker.update(_detections(expected), t_next).tracker_id.tolist() == [1]


def test_frames_out_of_time_order_are_refused() -> None:
    tracker = Tracker()
    tracker.update(_detections([STILL]), 1.0)
    with pytest.raises(ValueError, match="time order"):
        tracker.update(_detections([STILL]), 0.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_age_s": -1.0},
        {"min_hits": 0},
        {"iou_threshold": 0.0},
        {"iou_threshold": 1.5},
        {"centre_distance": -0.1},
        {"process_noise": 0.0},
        {"measurement_noise": -1.0},
    ],
)
def test_config_rejects_out_of_range_values(bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"tracking.{name}"):
        TrackerConfig(**bad)


def test_reset_can_keep_ids_counting() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    _run(tracker, [[STILL]], start_t=10.0)
    tracker.reset(restart_ids=False)
    assert tracker.active_ids() == set()
    assert tracker.update(_detections([STILL]), 0.0).tracker_id.tolist() == [2]


def test_active_ids_drop_a_track_after_max_age_s() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, max_age_s=1.0))
    far = [300.0, 300.0, 340.0, 330.0]
    _run(tracker, [[STILL, far], [STILL], [STILL]])  # far is last seen at 0 s; the update at 1.0 s still keeps it
    assert tracker.active_ids() == {1, 2}
    tracker.update(_detections([STILL]), 1.5)
    assert tracker.active_ids() == {1}


def test_config_comes_from_the_tracking_section() -> None:
    from streamlabel.config.tracking import TrackingConfig

    section = TrackingConfig(max_age_s=3.0, min_hits=4, iou_threshold=0.4, centre_distance=0.5)
    config = TrackerConfig.from_config(section)
    assert (config.max_age_s, config.min_hits, config.iou_threshold, config.centre_distance) == (3.0, 4, 0.4, 0.5)
    assert config.process_noise == section.process_noise and config.measurement_noise == section.measurement_noise


def test_a_part_that_moves_with_its_animal_follows_it_when_motion_side_is_given() -> None:
    """An 8 px eye on a dog that starts running (50 px/s², six of its own sides per s²): with the dog's side as
    motion scale the eye track keeps up and keeps its id; scaled by its own side, the jump is outside the track's
    gate by the time it moves 4.5 px a frame, and a new track starts (a part alone is not expected to move so)."""
    eye = np.array([100.0, 100.0, 108.0, 108.0])

    def follow(motion_side: float | None) -> tuple[list[int], list[float]]:
        tracker = Tracker(TrackerConfig(min_hits=1))
        ids, lags = [], []
        for i in range(12):
            x = 0.0 if i < 6 else 0.5 * (i - 5) ** 2  # still, then accelerating at 50 px/s²
            det = _detections([(eye + np.array([x, 0, x, 0])).tolist()])
            if motion_side is not None:
                det.data["motion_side"] = np.array([motion_side])
            out = tracker.update(det, i * 0.1)
            ids.append(out.tracker_id.tolist()[0])
            lags.append(float(abs(out.data[SMOOTHED_KEY][0][0] - (eye[0] + x))))
        return ids, lags

    carried_ids, carried_lags = follow(100.0)
    alone_ids, alone_lags = follow(None)
    assert carried_ids == [1] * 12
    assert alone_ids[:9] == [1] * 9 and set(alone_ids[9:]) == {2}
    assert max(carried_lags[6:9]) < max(alone_lags[6:9]) / 2


def _scored(boxes: list[list[float]], scores: list[float]) -> sv.Detections:
    return sv.Detections(xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4), confidence=np.array(scores))


@pytest.mark.parametrize(
    ("low_score", "scores", "expected"),
    [
        pytest.param(0.0, [0.9, 0.2, 0.2, 0.9], [[1], [1], [1], [1]], id="off-all-alike"),
        pytest.param(0.5, [0.9, 0.2, 0.2, 0.9], [[1], [1], [1], [1]], id="low-scores-keep-a-track"),
        pytest.param(0.5, [0.2, 0.2, 0.9, 0.9], [[-1], [-1], [1], [1]], id="low-scores-start-nothing"),
    ],
)
def test_low_scores_only_extend_tracks(low_score: float, scores: list[float], expected: list[list[int]]) -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, low_score=low_score))
    ids = [tracker.update(_scored([STILL], [s]), i * STEP_S).tracker_id.tolist() for i, s in enumerate(scores)]
    assert ids == expected


def test_confident_detections_are_matched_before_low_scoring_ones() -> None:
    """A low-scoring box overlaps the track better than the confident one; the confident one still wins."""
    tracker = Tracker(TrackerConfig(min_hits=1, low_score=0.5))
    tracker.update(_scored([STILL], [0.9]), 0.0)
    near, nearer = [104.0, 100.0, 144.0, 130.0], [101.0, 100.0, 141.0, 130.0]
    out = tracker.update(_scored([nearer, near], [0.3, 0.9]), STEP_S)
    assert out.tracker_id.tolist() == [UNCONFIRMED, 1]


@pytest.mark.parametrize(("frames_seen", "expected_id"), [(1, 1), (20, 2)])
def test_centre_matching_is_gated_by_how_far_the_track_may_have_moved(frames_seen: int, expected_id: int) -> None:
    """A box that jumps 0.64 diagonals (no overlap) at 25 fps: a track seen once knows nothing of its speed and
    takes it by centre; a track seen standing still for 20 frames does not (outside GATE_STDS of its filter)."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    box = [100.0, 100.0, 140.0, 140.0]
    for i in range(frames_seen):
        assert tracker.update(_detections([box]), i * 0.04).tracker_id.tolist() == [1]
    moved = [136.0, 100.0, 176.0, 140.0]  # centres 36 px apart, diagonals 56.6 px
    assert tracker.update(_detections([moved]), frames_seen * 0.04).tracker_id.tolist() == [expected_id]
