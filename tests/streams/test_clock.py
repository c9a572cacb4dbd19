"""StreamClock: PTS spacing kept, wall-clock fallback, monotonic across reconnects and PTS discontinuities."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from streamlabel.streams.clock import MIN_STEP_S, StreamClock

BEGIN = "begin"


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], []),
        # (frame time or None, monotonic now); BEGIN marks a new connection.
        ([(0.0, 0.0), (0.1, 0.0), (0.2, 0.0)], [0.0, 0.1, 0.2]),
        ([(5.0, 0.0), (5.1, 0.0)], [0.0, 0.1]),  # the stream's own origin does not matter
        ([(None, 10.0), (None, 10.5), (None, 11.25)], [0.0, 0.5, 1.25]),  # no PTS at all: wall clock
        # A GStreamer RTSP server: the first frame has no PTS, the next ones do.
        ([(None, 100.0), (0.1, 100.0), (0.2, 100.1)], [0.0, MIN_STEP_S, 0.1 + MIN_STEP_S]),
        # Reconnect 5 s later: the new connection's PTS restart at 0, the stream time goes on from 0.1 + 5.
        ([(0.0, 0.0), (0.1, 0.1), BEGIN, (0.0, 5.1), (0.1, 5.2)], [0.0, 0.1, 5.1, 5.2]),
        # A camera restarts its counter mid-connection: re-anchored after the last time plus the wall gap.
        ([(10.0, 0.0), (10.1, 0.1), (2.0, 0.2), (2.1, 0.3)], [0.0, 0.1, 0.2, 0.3]),
        # A repeated PTS still moves forward by the minimum step.
        ([(1.0, 0.0), (1.0, 0.0)], [0.0, MIN_STEP_S]),
    ],
)
def test_stamp(events: list, expected: list[float]) -> None:
    clock = StreamClock()
    got = []
    for event in events:
        if event == BEGIN:
            clock.begin()
            continue
        frame_time, now = event
        got.append(clock.stamp(frame_time, now=now))
    assert got == pytest.approx(expected, abs=1e-9)
    assert all(b > a for a, b in itertools.pairwise(got))


def test_utc_starts_at_the_given_start_and_follows_pts() -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    clock = StreamClock()
    t0 = clock.stamp(7.0, start=start, now=0.0)
    t1 = clock.stamp(7.5, start=start + timedelta(hours=1), now=0.5)  # start only counts for the first frame
    assert clock.utc(t0) == start
    assert clock.utc(t1) == start + timedelta(seconds=0.5)


def test_utc_defaults_to_now() -> None:
    before = datetime.now(UTC)
    clock = StreamClock()
    when = clock.utc(clock.stamp(None))
    assert before <= when <= datetime.now(UTC)
