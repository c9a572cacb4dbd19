"""BoxKalman: box/measurement conversion and constant-velocity prediction with time steps in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from streamlabel.tracking.kalman import MEASUREMENT_DIM, STATE_DIM, BoxKalman, transition, xyxy_to_z, z_to_xyxy

NOISE = 1.0


@pytest.mark.parametrize(
    ("xyxy", "z"),
    [
        (np.empty((0, 4)), np.empty((0, 4))),
        (np.array([[0.0, 0.0, 20.0, 10.0]]), np.array([[10.0, 5.0, 200.0, 2.0]])),
        (np.array([[10.0, 20.0, 14.0, 28.0]]), np.array([[12.0, 24.0, 32.0, 0.5]])),
    ],
)
def test_xyxy_and_z_convert_both_ways(xyxy: np.ndarray, z: np.ndarray) -> None:
    np.testing.assert_allclose(xyxy_to_z(xyxy), z)
    np.testing.assert_allclose(z_to_xyxy(z), xyxy)


def test_degenerate_box_gets_unit_aspect() -> None:
    np.testing.assert_allclose(xyxy_to_z(np.array([[5.0, 5.0, 5.0, 5.0]])), [[5.0, 5.0, 0.0, 1.0]])


def _moving_box(t: float, velocity: np.ndarray) -> np.ndarray:
    """A 20x10 box starting at the origin whose centre moves at ``velocity`` pixels per second."""
    return np.array([0.0, 0.0, 20.0, 10.0]) + np.tile(velocity, 2) * t


@pytest.mark.parametrize(
    ("times", "velocity"),
    [
        ([0.0, 0.5, 1.0, 1.5, 2.0], np.array([30.0, 10.0])),  # 2 fps
        ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], np.array([-50.0, 0.0])),  # 10 fps, moving left
        ([0.0, 0.5, 0.7, 1.5, 2.0], np.array([20.0, -20.0])),  # irregular sampling
        ([0.0, 1.0, 2.0, 3.0], np.array([0.0, 0.0])),  # still
    ],
)
def test_constant_velocity_is_predicted_within_a_pixel(times: list[float], velocity: np.ndarray) -> None:
    kalman = BoxKalman(_moving_box(times[0], velocity), times[0], NOISE, NOISE)
    for t in times[1:]:
        kalman.predict(t)
        kalman.update(_moving_box(t, velocity))
    t_next = times[-1] + 1.0  # a whole second ahead: the step comes from the time stamps, not a frame count
    assert np.abs(kalman.peek(t_next) - _moving_box(t_next, velocity)).max() < 1.0
    assert np.abs(kalman.predict(t_next) - _moving_box(t_next, velocity)).max() < 1.0
    np.testing.assert_allclose(kalman.velocity, velocity, atol=0.5)


def test_peek_changes_nothing() -> None:
    kalman = BoxKalman(np.array([0.0, 0.0, 10.0, 10.0]), 0.0, NOISE, NOISE)
    kalman.predict(1.0)
    kalman.update(np.array([10.0, 0.0, 20.0, 10.0]))
    before = kalman.box
    kalman.peek(5.0)
    np.testing.assert_array_equal(kalman.box, before)
    assert kalman.t == 1.0


def test_time_going_backwards_is_refused() -> None:
    kalman = BoxKalman(np.array([0.0, 0.0, 10.0, 10.0]), 2.0, NOISE, NOISE)
    with pytest.raises(ValueError, match="backwards"):
        kalman.predict(1.0)


def test_shrinking_box_never_gets_a_negative_area() -> None:
    kalman = BoxKalman(np.array([0.0, 0.0, 20.0, 20.0]), 0.0, NOISE, NOISE)
    for t, side in [(1.0, 10.0), (2.0, 5.0), (3.0, 2.0)]:
        kalman.predict(t)
        kalman.update(np.array([0.0, 0.0, side, side]))
    box = kalman.peek(100.0)
    assert box[2] >= box[0] and box[3] >= box[1]


def test_steps_match_filterpy_step_by_step() -> None:
    """The written-out predict and correct give what filterpy's general KalmanFilter gives with the same F, Q, R."""
    from filterpy.kalman import KalmanFilter

    box = np.array([0.0, 0.0, 30.0, 20.0])
    ours = BoxKalman(box, 0.0, NOISE, NOISE)
    reference = KalmanFilter(dim_x=STATE_DIM, dim_z=MEASUREMENT_DIM)
    reference.H = np.eye(MEASUREMENT_DIM, STATE_DIM)
    reference.x, reference.P = ours._x.copy(), ours._p.copy()
    rng = np.random.default_rng(0)
    for i in range(1, 20):
        t = i * 0.2
        reference.predict(F=transition(t - ours.t), Q=ours._q(ours.state, t - ours.t))
        ours.predict(t)
        np.testing.assert_allclose(ours._p, reference.P, rtol=1e-9, atol=1e-9)
        box = np.array([3.0 * i, 1.0 * i, 30.0 + 3.0 * i, 20.0 + i]) + rng.normal(0, 1, 4)
        reference.update(xyxy_to_z(box).T, R=np.diag(ours._r(ours.state)))
        ours.update(box)
        np.testing.assert_allclose(ours.state, reference.x[:, 0], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours._p, reference.P, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hidden_speed", [20.0, 0.0, -30.0])  # slower, stopped, turned back (px/s)
def test_a_track_found_again_predicts_its_next_box_from_the_motion_over_the_gap(hidden_speed: float) -> None:
    """A box walks right at 50 px/s for 1 s, is hidden 1 s while its speed changes, and is found again: with the
    re-update over the gap the next prediction is within a third of the error of a plain correction."""
    start = np.array([0.0, 0.0, 40.0, 80.0])
    plain, reobserved = BoxKalman(start, 0.0, NOISE, NOISE), BoxKalman(start, 0.0, NOISE, NOISE)
    for i in range(1, 11):  # 1 s at 10 fps
        for kalman in (plain, reobserved):
            kalman.predict(i * 0.1)
            kalman.update(start + np.array([5.0, 0, 5.0, 0]) * i)
    gap_t = [1.0 + 0.1 * k for k in range(1, 10)]
    for t in gap_t:
        plain.predict(t)
        reobserved.predict(t)

    def truth(t: float) -> np.ndarray:
        return start + np.array([1.0, 0, 1.0, 0]) * (50.0 + hidden_speed * (t - 1.0))

    plain.predict(2.0)
    plain.update(truth(2.0))
    reobserved.reobserve(xyxy_to_z(truth(2.0))[0], 2.0, gap_t)
    assert reobserved.t == plain.t == 2.0
    plain_error = abs(plain.predict(2.1)[0] - truth(2.1)[0])
    reobserved_error = abs(reobserved.predict(2.1)[0] - truth(2.1)[0])
    assert plain_error > 1.0
    assert reobserved_error < plain_error / 3


@pytest.mark.parametrize("side", [8.0, 200.0])
def test_smoothing_is_the_same_at_every_scale(side: float) -> None:
    """Noise relative to the box: a still box jittering by 5% of its side is smoothed alike whatever its size."""
    rng = np.random.default_rng(1)
    truth = np.array([50.0, 50.0, 50.0 + side, 50.0 + side])
    kalman, raw, smoothed = None, [], []
    for i in range(200):
        box = truth + rng.normal(0, 0.05 * side, 4)
        if kalman is None:
            kalman = BoxKalman(box, 0.0, NOISE, NOISE)
            continue
        kalman.predict(i * 0.1)
        smoothed.append(kalman.update(box) - truth)
        raw.append(box - truth)
    ratio = np.sqrt(np.mean(np.square(smoothed[20:]))) / np.sqrt(np.mean(np.square(raw[20:])))
    assert 0.2 < ratio < 0.6
