"""Timestamp sampling: one frame per interval, phase kept, no burst after a gap."""

from __future__ import annotations

import pytest

from streamlabel.streams import Sampler


def taken(fps: float, times: list[float]) -> list[float]:
    s = Sampler(fps)
    return [t for t in times if s.take(t)]


@pytest.mark.parametrize(
    ("fps", "times", "expected"),
    [
        (2.0, [], []),
        (2.0, [0.0], [0.0]),
        (2.0, [i / 10 for i in range(21)], [0.0, 0.5, 1.0, 1.5, 2.0]),
        (1.0, [i / 30 for i in range(91)], [0.0, 1.0, 2.0, 3.0]),
        (10.0, [0.0, 0.1, 0.2], [0.0, 0.1, 0.2]),
        (30.0, [0.0, 0.1, 0.2], [0.0, 0.1, 0.2]),  # asking for more than the source gives every frame
        (1.0, [0.0, 0.4, 5.2, 5.5, 6.2], [0.0, 5.2, 6.2]),  # a gap: the next frame, then the schedule moves on
        (3.0, [5.0, 5.1, 5.34, 5.67, 6.0], [5.0, 5.34, 5.67, 6.0]),  # the first frame sets the phase
    ],
)
def test_sampler(fps: float, times: list[float], expected: list[float]) -> None:
    assert taken(fps, times) == pytest.approx(expected)


@pytest.mark.parametrize("fps", [0.0, -1.0])
def test_sampler_rejects_non_positive_fps(fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be > 0"):
        Sampler(fps)


def test_reset_takes_the_next_frame() -> None:
    s = Sampler(1.0)
    assert s.take(0.0) and not s.take(0.5)
    s.reset()
    assert s.take(0.6)
