"""Heartbeats: when a labeling thread counts as late, and the budget a validator call is allowed."""

from __future__ import annotations

import pytest

from streamlabel.config import ValidateModelConfig
from streamlabel.daemon.heartbeat import VALIDATOR_SLACK_S, Heartbeat, most_late, validator_budget_s

TOLERANCE_S = 10.0


def beat_at(at: float, budget_s: float = 0.0, **kwargs: object) -> Heartbeat:
    hb = Heartbeat("t")
    hb.beat(budget_s, **kwargs)  # type: ignore[arg-type]
    hb.at = at
    return hb


@pytest.mark.parametrize(
    ("beat", "now", "late"),
    [
        (beat_at(100.0), 105.0, False),  # within the tolerance
        (beat_at(100.0), 111.0, True),  # past it
        (beat_at(100.0, budget_s=30.0), 111.0, False),  # a bounded wait was announced
        (beat_at(100.0, budget_s=30.0), 141.0, True),  # ... and it ran over
        (beat_at(100.0, idle=True), 1000.0, False),  # waiting for work holds nothing up
    ],
)
def test_late_after_tolerance_plus_the_announced_budget(beat: Heartbeat, now: float, late: bool) -> None:
    assert (beat.late_s(TOLERANCE_S, now) > 0) is late


def test_a_thread_waiting_for_another_is_as_late_as_that_one() -> None:
    worker = beat_at(100.0)
    loop = beat_at(50.0, waits_for=worker)
    assert loop.late_s(TOLERANCE_S, 105.0) <= 0  # the worker beat recently: the loop is not late
    assert loop.late_s(TOLERANCE_S, 111.0) > 0  # the worker is stuck: so is the loop
    worker.beat(idle=True)
    assert loop.late_s(TOLERANCE_S, 10_000.0) <= 0


def test_most_late_names_the_latest_thread() -> None:
    on_time, stuck = Heartbeat("labeler"), Heartbeat("perceive")
    stuck.at -= 100.0
    name, late_s = most_late([on_time, stuck], TOLERANCE_S)
    assert name == "perceive" and late_s == pytest.approx(90.0, abs=1.0)
    assert most_late([Heartbeat("labeler")], TOLERANCE_S)[1] < 0


@pytest.mark.parametrize(
    ("cfg", "candidates", "budget_s"),
    [
        ({}, 0, 0.0),  # nothing to ask: no wait
        ({"max_wait_s": 60, "timeout_s": 30, "retries": 3, "concurrency": 2}, 1, 60.0),  # max_wait_s cuts it
        ({"max_wait_s": 60, "timeout_s": 30, "retries": 3, "concurrency": 2}, 5, 3 * 60.0),  # 3 rounds of 2
        ({"max_wait_s": 60, "timeout_s": 8, "retries": 0, "concurrency": 1}, 2, 2 * 8.0),  # one short attempt
        ({"max_wait_s": 600, "timeout_s": 10, "retries": 2, "concurrency": 4}, 4, 30 + 1 + 2),  # with backoff
    ],
)
def test_validator_budget(cfg: dict, candidates: int, budget_s: float) -> None:
    got = validator_budget_s(ValidateModelConfig.model_validate(cfg), candidates)
    assert got == pytest.approx(budget_s + (VALIDATOR_SLACK_S if candidates else 0.0))
