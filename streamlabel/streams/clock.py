"""Per-stream time: monotonic ``pts`` seconds and UTC ``time`` for every frame, across reconnects and loops."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

# Smallest step between two frames' timestamps; keeps them strictly increasing when a source repeats one.
MIN_STEP_S = 1e-6
# A PTS that goes back by more than this within one connection is a discontinuity (a camera restarted its
# counter); the clock re-anchors instead of squashing every following frame onto the last timestamp.
BACKWARD_JUMP_S = 0.5


class StreamClock:
    """Maps decoded frame times (PTS seconds, or None) onto one monotonic per-stream timeline.

    The first connection starts at 0. Within a connection the stream's own PTS spacing is kept. A frame without
    PTS (a GStreamer RTSP server sends the first one that way) advances by wall-clock time. A new connection
    (``begin``) or a PTS discontinuity continues from the last timestamp plus the wall-clock gap, so ``pts`` keeps
    tracking real time for live sources and never goes backwards. ``time`` is ``anchor + pts``; the anchor is set
    once, at the first frame (the file's creation time, or now).
    """

    def __init__(self) -> None:
        self.last: float | None = None
        self.anchor: datetime | None = None
        self._offset: float | None = None
        self._last_wall: float | None = None

    def begin(self) -> None:
        """A new connection (or a file's new loop) starts: its PTS origin is unknown until its first frame."""
        self._offset = None

    def stamp(self, frame_time: float | None, start: datetime | None = None, now: float | None = None) -> float:
        """The stream time (seconds) of a frame with this PTS time (seconds, or None).

        Args:
            frame_time: The decoded frame's time in seconds, None when it has no PTS.
            start: UTC time of the first frame, used only for the stream's first frame (default: now).
            now: Monotonic clock reading (default: ``time.monotonic()``), for tests.
        """
        now = time.monotonic() if now is None else now
        wall_gap = 0.0 if self._last_wall is None else now - self._last_wall
        if frame_time is None:
            t = 0.0 if self.last is None else self.last + wall_gap
        else:
            if (
                self._offset is not None
                and self.last is not None
                and frame_time + self._offset < self.last - (BACKWARD_JUMP_S)
            ):
                self._offset = None
            if self._offset is None:
                base = 0.0 if self.last is None else self.last + max(MIN_STEP_S, wall_gap)
                self._offset = base - frame_time
            t = frame_time + self._offset
        if self.last is not None and t < self.last + MIN_STEP_S:
            t = self.last + MIN_STEP_S
        if self.anchor is None:
            self.anchor = (start or datetime.now(UTC)) - timedelta(seconds=t)
        self.last = t
        self._last_wall = now
        return t

    def utc(self, t: float) -> datetime:
        """The UTC time of stream time ``t``."""
        return (self.anchor or datetime.now(UTC)) + timedelta(seconds=t)
