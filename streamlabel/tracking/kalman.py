"""A constant-velocity Kalman filter for one box (filterpy), with time steps in seconds.

The state is ``[x, y, s, r, vx, vy, vs]``: box centre ``x, y`` (pixels), scale ``s`` (area, pixels²), aspect ``r``
(width / height, slowly drifting) and the velocities of ``x, y, s`` per second. Measurements are ``[x, y, s, r]``.
Noise is relative to the box size (see the constants), so the same config smooths dogs and eyes alike.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
from filterpy.kalman import KalmanFilter

logger = logging.getLogger(__name__)

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


_EYE_Z = np.eye(MEASUREMENT_DIM)


def _diagonal_inverse(s: np.ndarray) -> np.ndarray:
    """Inverse of the innovation covariance, which is diagonal here: x, y, s and r never mix (F, Q, P and H keep
    each axis with its own velocity), so the general 4x4 inverse filterpy calls by default is not needed."""
    return _EYE_Z / s.diagonal()  # row i of the identity over column scales: diag(1 / s_ii)


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
        self._kf = KalmanFilter(dim_x=STATE_DIM, dim_z=MEASUREMENT_DIM)
        self._kf.H = np.eye(MEASUREMENT_DIM, STATE_DIM)
        self._kf.inv = _diagonal_inverse
        z = xyxy_to_z(xyxy)[0]
        self._kf.x[:MEASUREMENT_DIM, 0] = z
        self._process_noise = process_noise
        self._measurement_noise = measurement_noise
        side, area = _side(z[2]), max(z[2], 1.0)
        prior_v = VELOCITY_PRIOR_STD * np.array([side, side, area])
        self._kf.P = np.diag(np.r_[np.diag(self._r(z)), prior_v**2])
        self.t = float(t)
        self.motion_side: float | None = None

    def _r(self, z: np.ndarray) -> np.ndarray:
        """Measurement covariance for a box of measurement (or state) ``z``."""
        area, aspect = max(float(z[2]), 1.0), max(float(z[3]), 1e-3)
        r = np.zeros((MEASUREMENT_DIM, MEASUREMENT_DIM))
        r[0, 0] = r[1, 1] = CENTRE_STD**2 * area * self._measurement_noise  # (CENTRE_STD * side)², side² = area
        r[2, 2] = (AREA_STD * area) ** 2 * self._measurement_noise
        r[3, 3] = (ASPECT_STD * aspect) ** 2 * self._measurement_noise
        return r

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
        x = self._kf.x
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
        self._kf.x, dt = self._advance(t)
        self._kf.predict(F=transition(dt), Q=self._q(self._kf.x[:, 0], dt))
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
        self._kf.update(np.asarray(z, dtype=np.float64).reshape(MEASUREMENT_DIM, 1), R=self._r(self._kf.x[:, 0]))

    @property
    def state(self) -> np.ndarray:
        """The state vector ``(7,)`` ``[x, y, s, r, vx, vy, vs]``."""
        return self._kf.x[:, 0]

    @property
    def box(self) -> np.ndarray:
        """The current state as an xyxy box ``(4,)``."""
        return z_to_xyxy(self._kf.x.T)[0]

    @property
    def velocity(self) -> np.ndarray:
        """The centre velocity ``[vx, vy]`` in pixels per second."""
        return self._kf.x[4:6, 0].copy()
