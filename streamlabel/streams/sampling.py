"""Sampling: which decoded frames become pipeline frames, by timestamp rather than by frame count."""

from __future__ import annotations

import math


class Sampler:
    """Takes one frame per ``1 / fps`` seconds of stream time, keeping the phase of the first frame.

    Timestamps may jump (a reconnect, a dropped GOP): a gap longer than the interval takes the next frame and
    moves the schedule forward without a burst of catch-up samples.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0 (got {fps})")
        self.interval = 1.0 / fps
        self._next: float | None = None
        # Half a millisecond of slack absorbs rounding of PTS to the stream time base.
        self._slack = 5e-4

    def take(self, t: float) -> bool:
        """Whether the frame at stream time ``t`` (seconds) is sampled."""
        if self._next is None:
            self._next = t + self.interval
            return True
        if t + self._slack < self._next:
            return False
        steps = max(1, math.floor((t + self._slack - self._next) / self.interval) + 1)
        self._next += steps * self.interval
        return True

    def reset(self) -> None:
        """Forget the schedule (after a reconnect the next frame is taken)."""
        self._next = None
