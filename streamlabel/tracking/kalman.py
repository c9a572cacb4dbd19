"""A constant-velocity Kalman filter for one box, with time steps in seconds.

The state is ``[x, y, s, r, vx, vy, vs]``: box centre ``x, y`` (pixels), scale ``s`` (area, pixels²), aspect ``r``
(width / height, slowly drifting) and the velocities of ``x, y, s`` per second. Measurements are ``[x, y, s, r]``.
Noise is relative to the box size (see the constants), so the same config smooths dogs and eyes alike.

The predict and correct steps are the textbook ones written out rather than filterpy's ``KalmanFilter``: they run
for every track on every frame, and filterpy's general step (copies, a general inverse, checks) took most of the
1 ms per frame budget; here the axes never mix (F, Q, P and H keep each axis with its own velocity), so the
innovation covariance is diagonal and the gain is a division. ``tests/tracking/test_kalman.py`` checks the result
against filterpy step by step.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

STATE_DIM = 7
MEASUREMENT_DIM = 4
# The noise scales with the box: a detector's jitter and an animal's acceleration are roughly proportional to its
# size, so one setting fits a dog filling the frame and an eye of 10 pixels. L is the box side, sqrt(area).
# Measurement std: centre CENTRE_STD * L, area AREA_STD * s, aspect ASPECT_STD * r (times sqrt(measurement_noise)).
CENTRE_STD, AREA_STD, ASPECT_STD = 0.05, 0.15, 0.15
# Process (white-noise acceleration) std per second: centre ACCEL_STD * L / s², area AREA_ACCEL_STD * s / s², aspect
# drift ASPECT_DRIFT_STD * r / sqrt(s) (times sqrt(process_noise)).
# A part (an eye) moves with its animal: its acceleration scales with the animal's side (``motion_side``).
ACCEL_STD, AREA_ACCEL_STD, ASPECT_DRIFT_STD = 0.2, 0.1, 0.1
# Prior std of the velocities of a new track: VELOCITY_PRIOR_STD box sides (x, y) or areas (s) per second.
VELOCITY_PRIOR_STD = 10.0


def xyxy_to_z(xyxy: np.ndarray) -> np.ndarray:
    """Convert boxes ``(N, 4)`` xyxy to measurements ``(N, 4)`` ``[x, y, s, r]``; degenerate boxes get ``r = 1``."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]
    w, h = size[:, 0], size[:, 1]
    z = np.empty((len(boxes), 4))
    z[:, :2] = boxes[:, :2] + size / 2
    z[:, 2] = w * h
    z[:, 3] = np.where(h > 0, w / np.where(h > 0, h, 1.0), 1.0)
    return z


def z_to_xyxy(z: np.ndarray) -> np.ndarray:
    """Convert ``(N, >=4)`` ``[x, y, s, r, ...]`` rows back to xyxy boxes ``(N, 4)``; negative areas become 0."""
    rows = np.asarray(z, dtype=np.float64).reshape(-1, np.shape(z)[-1])
    s = np.maximum(rows[:, 2], 0.0)
    r = np.maximum(rows[:, 3], 0.0)
    half = np.empty((len(rows), 2))
    half[:, 0] = np.sqrt(s * r) / 2
    half[:, 1] = np.sqrt(s / np.maximum(r, 1e-12)) * (r > 0) / 2  # h = s / w = sqrt(s / r); 0 when w is 0
    centre = rows[:, :2]
    return np.concatenate([centre - half, centre + half], axis=1)


@functools.lru_cache(maxsize=64)
def transition(dt: float) -> np.ndarray:
    """The state transition matrix for a step of ``dt`` seconds (constant velocity on x, y and s); read-only."""
    f = np.eye(STATE_DIM)
    f[0, 4] = f[1, 5] = f[2, 6] = dt
    f.flags.writeable = False
    return f


# For each state index, the noise std it scales with: x, y, s, r, then vx, vy, vs share x, y, s.
_Q_AXIS = np.array([0, 1, 2, 3, 0, 1, 2])


@functools.lru_cache(maxsize=64)
def _q_pattern(dt: float) -> np.ndarray:
    """The white-noise-acceleration covariance pattern for a step of ``dt`` s, before scaling by the stds."""
    q = np.zeros((STATE_DIM, STATE_DIM))
    for pos, vel in ((0, 4), (1, 5), (2, 6)):
        q[pos, pos], q[pos, vel], q[vel, pos], q[vel, vel] = dt**3 / 3, dt**2 / 2, dt**2 / 2, dt
    q[3, 3] = dt
    q.flags.writeable = False
    return q


def _side(area: float) -> float:
    """The side of a square of ``area`` (at least 1 pixel)."""
    return math.sqrt(max(area, 1.0))


class BoxKalman:
    """One track's filter: ``predict(t)`` advances to time ``t`` (seconds), ``update(xyxy)`` corrects.

    Args:
        xyxy: the first box, which initialises the state with zero velocity.
        t: its time stamp in seconds.
        process_noise: scales the process noise (how fast the motion may change); raising it follows turns
            sooner and smooths less.
        measurement_noise: scales the measurement noise; raising it trusts detections less and smooths more.

    ``motion_side`` (pixels, None by default): the side of the object that carries this one (an eye's dog); the
    acceleration noise then scales with it instead of with this box.
    """

    def __init__(self, xyxy: np.ndarray, t: float, process_noise: float, measurement_noise: float) -> None:
        z = xyxy_to_z(xyxy)[0]
        self._x = np.zeros((STATE_DIM, 1))
        self._x[:MEASUREMENT_DIM, 0] = z
        self._process_noise = process_noise
        self._measurement_noise = measurement_noise
        side, area = _side(z[2]), max(z[2], 1.0)
        prior_v = VELOCITY_PRIOR_STD * np.array([side, side, area])
        self._p = np.diag(np.r_[self._r(z), prior_v**2])
        self.t = float(t)
        # The state right after the last measurement, for ``reobserve``.
        self._measured = (self._x, self._p, self.t)
        self.motion_side: float | None = None

    def _r(self, z: np.ndarray) -> np.ndarray:
        """The diagonal ``(4,)`` of the measurement covariance for a box of measurement (or state) ``z``."""
        area, aspect = max(float(z[2]), 1.0), max(float(z[3]), 1e-3)
        noise = self._measurement_noise
        centre = CENTRE_STD**2 * area * noise  # (CENTRE_STD * side)², side² = area
        return np.array([centre, centre, (AREA_STD * area) ** 2 * noise, (ASPECT_STD * aspect) ** 2 * noise])

    def _q(self, x: np.ndarray, dt: float) -> np.ndarray:
        """Process covariance over ``dt`` seconds: discrete white-noise acceleration on x, y and s; drift on r."""
        side, area, aspect = _side(float(x[2])), max(float(x[2]), 1.0), max(float(x[3]), 1e-3)
        if self.motion_side is not None:
            side = max(side, self.motion_side)
        v = np.array([ACCEL_STD * side, ACCEL_STD * side, AREA_ACCEL_STD * area, ASPECT_DRIFT_STD * aspect])[_Q_AXIS]
        v *= math.sqrt(self._process_noise)
        return _q_pattern(dt) * v[:, None] * v[None, :]

    def _advance(self, t: float) -> tuple[np.ndarray, float]:
        """The state advanced to ``t`` and the ``dt``; the area velocity is dropped where it would make s negative."""
        dt = float(t) - self.t
        if dt < 0:
            raise ValueError(f"time went backwards: t={t} is before the filter's t={self.t}")
        x = self._x
        if x[2, 0] + x[6, 0] * dt <= 0:
            x = x.copy()
            x[6, 0] = 0.0
        return x, dt

    def predict(self, t: float) -> np.ndarray:
        """Advance the state to time ``t`` (seconds, not before the last step) and return the predicted xyxy box."""
        self.advance(t)
        return self.box

    def advance(self, t: float) -> None:
        """``predict`` without building the box (the tracker converts every track's state in one call)."""
        x, dt = self._advance(t)
        f = transition(dt)
        self._x = f @ x
        self._p = f @ self._p @ f.T + self._q(x[:, 0], dt)
        self.t = float(t)

    def peek(self, t: float) -> np.ndarray:
        """The box predicted for time ``t`` without changing the filter."""
        x, dt = self._advance(t)
        return z_to_xyxy((transition(dt) @ x).T)[0]

    def update(self, xyxy: np.ndarray) -> np.ndarray:
        """Correct the state with a measured xyxy box (at the time of the last ``predict``); return the smoothed box."""
        self.correct(xyxy_to_z(xyxy)[0])
        return self.box

    def correct(self, z: np.ndarray) -> None:
        """``update`` with a measurement ``[x, y, s, r]`` already converted, without building the box."""
        x, p = self._x, self._p
        # The innovation covariance S = P[:4, :4] + R is diagonal (see the module doc): the gain is a division.
        gain = p[:, :MEASUREMENT_DIM] / (p.diagonal()[:MEASUREMENT_DIM] + self._r(x[:, 0]))
        self._x = x + gain @ (np.asarray(z, dtype=np.float64).reshape(MEASUREMENT_DIM, 1) - x[:MEASUREMENT_DIM])
        self._p = p - gain @ p[:MEASUREMENT_DIM, :]
        # Every step makes new arrays and never writes into old ones, so references keep this posterior.
        self._measured = (self._x, self._p, self.t)

    def reobserve(self, z: np.ndarray, t: float, gap_t: list[float]) -> None:
        """Correct with ``z`` at ``t`` after updates at ``gap_t`` without a measurement, re-estimating the motion.

        The filter goes back to where it was right after its last measurement and is corrected at each time of
        ``gap_t`` with a box on the straight line from that measurement to ``z``, then at ``t`` with ``z``: a track
        found again after an occlusion takes the velocity it really had instead of the one it coasted on (the
        observation-centric re-update of OC-SORT, Cao et al. 2023).
        """
        self._x, self._p, self.t = self._measured
        z_last = self._x[:MEASUREMENT_DIM, 0].copy()
        z = np.asarray(z, dtype=np.float64)
        span = max(float(t) - self.t, 1e-9)
        start_t = self.t
        for t_gap in gap_t:
            self.advance(t_gap)
            self.correct(z_last + (z - z_last) * ((t_gap - start_t) / span))
        self.advance(t)
        self.correct(z)

    @property
    def state(self) -> np.ndarray:
        """The state vector ``(7,)`` ``[x, y, s, r, vx, vy, vs]``."""
        return self._x[:, 0]

    @property
    def box(self) -> np.ndarray:
        """The current state as an xyxy box ``(4,)``."""
        return z_to_xyxy(self._x.T)[0]

    @property
    def position_std(self) -> float:
        """Std (pixels) of where the next measured centre may fall: state uncertainty plus measurement noise, per
        axis (the mean of x and y)."""
        p = self._p
        return math.sqrt((p[0, 0] + p[1, 1]) / 2 + self._r(self._x[:, 0])[0])

    @property
    def velocity(self) -> np.ndarray:
        """The centre velocity ``[vx, vy]`` in pixels per second."""
        return self._x[4:6, 0].copy()
