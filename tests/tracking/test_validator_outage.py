"""An unreachable validator: its candidates stay pending, and after one failed round the labeler stops asking for
a while (a circuit breaker), so an outage does not slow every batch down by a round of retries."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streamlabel.config import Config
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Candidate, ValidatorUnavailableError, Verdict
from streamlabel.stages.gate import ValidatorGate
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter
from tests.tracking.test_pipeline_tracking import frames_of, walking_dog


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FlakyValidator(CountingValidator):
    """Passes every candidate, except while ``down``: then each call raises, as an unreachable Ollama does."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        self.calls += 1
        if self.down:
            raise ValidatorUnavailableError("ollama at http://127.0.0.1:1 did not answer")
        return super().validate(items)


def make() -> tuple[Labeler, FlakyValidator, FakeClock]:
    validator, clock = FlakyValidator(), FakeClock()
    stages = Stages(ScriptedDetector(walking_dog(12)), ScriptedGrounder(), ScriptedSegmenter(), validator)
    labeler = Labeler(Config.model_validate({"tracking": {"enabled": False}}), stages)
    labeler.gate = ValidatorGate(first_s=5, max_s=20, clock=clock)
    return labeler, validator, clock


def test_outage_pauses_the_validator_and_every_candidate_stays_pending(caplog: pytest.LogCaptureFixture) -> None:
    labeler, validator, clock = make()
    frames = iter(frames_of("cam", range(12)))

    def label_next() -> list[str]:
        return labeler.label([next(frames)])[0].statuses()

    assert label_next() == ["accepted", "accepted"]
    validator.down = True
    assert label_next() == ["pending", "pending"]  # asked, failed: paused 5 s
    assert validator.calls == 2 and "next 5 s" in caplog.text
    clock.now += 4.9
    assert label_next() == ["pending", "pending"]  # paused: not asked
    assert validator.calls == 2 and labeler.gate.skipped == 2
    clock.now += 0.2
    assert label_next() == ["pending", "pending"]  # asked again, failed again: paused 10 s
    assert validator.calls == 3
    clock.now += 9.9
    label_next()
    assert validator.calls == 3
    clock.now += 0.2
    label_next()  # failed a third time: 20 s (the cap), then 20 s again
    clock.now += 20.1
    label_next()
    assert validator.calls == 5 and labeler.gate.failed() == 20
    validator.down = False
    clock.now += 20.1
    assert label_next() == ["accepted", "accepted"]  # back: asked and answered, gate closed
    assert label_next() == ["accepted", "accepted"]
    assert validator.calls == 7 and not labeler.gate.paused


def test_gate_after_recovery_starts_again_from_the_first_pause() -> None:
    clock = FakeClock()
    gate = ValidatorGate(first_s=5, max_s=60, clock=clock)
    assert not gate.paused
    assert [gate.failed() for _ in range(6)] == [5, 10, 20, 40, 60, 60]
    assert gate.paused
    gate.answered()
    assert not gate.paused and gate.failed() == 5
    clock.now += 5.0
    assert not gate.paused
