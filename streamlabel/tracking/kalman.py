"""A constant-velocity Kalman filter for one box (filterpy), with time steps in seconds.

The state is ``[x, y, s, r, vx, vy, vs]``: box centre ``x, y`` (pixels), scale ``s`` (area, pixels²), aspect ``r``
(width / height, held constant) and the velocities of ``x, y, s`` per second. Measurements are ``[x, y, s, r]``.
"""

from __future__ import annotations

import logging

import numpy as np
from filterpy.kalman import KalmanFilter

logger = logging.getLogger(__name__)

STATE_DIM = 7
MEASUREMENT_DIM = 4
# Relative variances in SORT's proportions (Bewley et al., 2016); the config scales them as a whole.
_MEASUREMENT_VARIANCE = np.array([1.0, 1.0, 10.0, 10.0])
_INITIAL_VARIANCE = np.array([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])
_PROCESS_VARIANCE_PER_S = np.array([1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-2, 1e-4])


def xyxy_to_z(xyxy: np.ndarray) -> np.ndarray:
    """Convert boxes ``(N, 4)`` xyxy to measurements ``(N, 4)`` ``[x, y, s, r]``; degenerate boxes get ``r = 1``."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    r = np.divide(w, h, out=np.ones_like(w), where=h > 0)
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w * h, r], axis=1)


def z_to_xyxy(z: np.ndarray) -> np.ndarray:
    """Convert ``(N, >=4)`` ``[x, y, s, r, ...]`` rows back to xyxy boxes ``(N, 4)``; negative areas become 0."""
    rows = np.asarray(z, dtype=np.float64).reshape(-1, np.shape(z)[-1])
    s = np.clip(rows[:, 2], 0.0, None)
    r = np.clip(rows[:, 3], 0.0, None)
    w = np.sqrt(s * r)
    h = np.divide(s, w, out=np.zeros_like(s), where=w > 0)
    x, y = rows[:, 0], rows[:, 1]
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)


def transition(dt: float) -> np.ndarray:
    """The state transition matrix for a step of ``dt`` seconds (constant velocity on x, y and s)."""
    f = np.eye(STATE_DIM)
    f[0, 4] = f[1, 5] = f[2, 6] = dt
    return f


class BoxKalman:
    """One track's filter: ``predict(t)`` advances to time ``t`` (seconds), ``update(xyxy)`` corrects.

    Args:
        xyxy: the first box, which initialises the state with zero velocity.
        t: its time stamp in seconds.
        process_noise: scales the process noise (how fast the motion may change); raising it follows turns
            sooner and smooths less.
        measurement_noise: scales the measurement noise; raising it trusts detections less and smooths more.
    """

    def __init__(self, xyxy: np.ndarray, t: float, process_noise: float, measurement_noise: float) -> None:
        self._kf = KalmanFilter(dim_x=STATE_DIM, dim_z=MEASUREMENT_DIM)
        self._kf.H = np.eye(MEASUREMENT_DIM, STATE_DIM)
        self._kf.R = np.diag(_MEASUREMENT_VARIANCE * measurement_noise)
        self._kf.P = np.diag(_INITIAL_VARIANCE)
        self._kf.x[:MEASUREMENT_DIM, 0] = xyxy_to_z(xyxy)[0]
        self._process_q = np.diag(_PROCESS_VARIANCE_PER_S * process_noise)
        self.t = float(t)

    def _advance(self, t: float) -> tuple[np.ndarray, float]:
        """The state advanced to ``t`` and the ``dt``; the area velocity is dropped where it would make s negative."""
        dt = float(t) - self.t
        if dt < 0:
            raise ValueError(f"time went backwards: t={t} is before the filter's t={self.t}")
        x = self._kf.x.copy()
        if x[2, 0] + x[6, 0] * dt <= 0:
            x[6, 0] = 0.0
        return x, dt

    def predict(self, t: float) -> np.ndarray:
        """Advance the state to time ``t`` (seconds, not before the last step) and return the predicted xyxy box."""
        self._kf.x, dt = self._advance(t)
        self._kf.predict(F=transition(dt), Q=self._process_q * dt)
        self.t = float(t)
        return self.box

    def peek(self, t: float) -> np.ndarray:
        """The box predicted for time ``t`` without changing the filter."""
        x, dt = self._advance(t)
        return z_to_xyxy((transition(dt) @ x).T)[0]

    def update(self, xyxy: np.ndarray) -> np.ndarray:
        """Correct the state with a measured xyxy box (at the time of the last ``predict``); return the smoothed box."""
        self._kf.update(xyxy_to_z(xyxy)[0].reshape(MEASUREMENT_DIM, 1))
        return self.box

    @property
    def box(self) -> np.ndarray:
        """The current state as an xyxy box ``(4,)``."""
        return z_to_xyxy(self._kf.x.T)[0]

    @property
    def velocity(self) -> np.ndarray:
        """The centre velocity ``[vx, vy]`` in pixels per second."""
        return self._kf.x[4:6, 0].copy()
