"""Verdict reuse inside a batch (the Labeler judges a batch in runs) and why reuse refuses
(``StreamTracks.refusal``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from streamlabel.config import Config
from streamlabel.config.tracking import TrackingConfig
from streamlabel.frames import VERDICT_KEY, Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Candidate, Verdict
from streamlabel.tracking.streams import Refusal, StreamTracks
from streamlabel.tracking.tracker import UNCONFIRMED
from tests.scripted import MARK, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter, frame_image

STEP_S = 0.5  # 2 fps
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class CallValidator:
    """Passes every check (confidence 0.9) except on the frames in ``fail``; records each call's frame indices."""

    model_id = "call-validate"

    def __init__(self, fail: Sequence[int] = ()) -> None:
        self.fail = set(fail)
        self.calls: list[list[int]] = []

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        frames = [int(item.image[MARK]) for item in items]
        self.calls.append(frames)
        return [
            Verdict(f not in self.fail, 0.9, {"part_visible": f not in self.fail}, "call", self.model_id)
            for f in frames
        ]


def _labeler(validator: CallValidator, revalidate_s: float, n: int) -> Labeler:
    script = {i: [[20 + 4.0 * i, 30, 80 + 4.0 * i, 80]] for i in range(n)}  # one dog walking right, two eyes
    cfg = Config.model_validate({"tracking": {"revalidate_s": revalidate_s, "novelty": {"enabled": False}}})
    return Labeler(cfg, Stages(ScriptedDetector(script), ScriptedGrounder(), ScriptedSegmenter(), validator))  # type: ignore[arg-type]


def _frames(n: int) -> list[Frame]:
    return [Frame("cam", i, i * STEP_S, T0 + timedelta(seconds=i * STEP_S), frame_image(i)) for i in range(n)]


def _reused(results: list[FrameResult]) -> list[bool]:
    return [bool(r.parts.data[VERDICT_KEY][0].reused) for r in results]


def test_a_verdict_judged_in_a_batch_is_reused_later_in_the_same_batch() -> None:
    """Frame 1's verdict (the first of confirmed tracks) stands for frames 2-6 of the same batch (max_reuses 5):
    two validator calls, the second for the run that starts at frame 2 and judges frame 7 afresh."""
    validator = CallValidator()
    results = _labeler(validator, 3.0, 8).label(_frames(8))
    assert _reused(results) == [False, False, True, True, True, True, True, False]
    assert validator.calls == [[0, 0, 1, 1], [7, 7]]  # frame 0's tracks are unconfirmed: they end no run


def test_without_reuse_a_batch_is_one_validator_call() -> None:
    validator = CallValidator()
    results = _labeler(validator, 0.0, 8).label(_frames(8))
    assert not any(_reused(results)) and len(validator.calls) == 1 and len(validator.calls[0]) == 16


def test_a_rejection_judged_in_a_batch_is_not_reused_there() -> None:
    """Frame 1's verdict fails (an eye closed): frame 2 of the same batch is judged afresh, and reuses from 3 on."""
    validator = CallValidator(fail=[1])
    results = _labeler(validator, 3.0, 6).label(_frames(6))
    assert _reused(results) == [False, False, False, True, True, True]
    assert [r.statuses()[0] for r in results[1:4]] == ["rejected", "accepted", "accepted"]
    assert validator.calls == [[0, 0, 1, 1], [2, 2]]


def test_the_runs_give_the_same_labels_as_frames_one_by_one() -> None:
    batch = _labeler(CallValidator(fail=[3]), 3.0, 12).label(_frames(12))
    one = _labeler(CallValidator(fail=[3]), 3.0, 12)
    single = [r for f in _frames(12) for r in one.label([f])]
    assert _reused(batch) == _reused(single)
    assert [r.statuses() for r in batch] == [r.statuses() for r in single]


# ----------------------------------------------------------------------------------------------- refusals


def _tracks_with_verdict(passed: bool = True, **cfg: float) -> StreamTracks:
    tracks = StreamTracks("cam", TrackingConfig(**({"revalidate_s": 3.0, "max_reuses": 2} | cfg)))
    verdict = Verdict(passed, 0.9, {"mask_on_part": passed}, "test", "test")
    tracks.remember(7, 0.0, 3, verdict)
    return tracks


def _with_look(tracks: StreamTracks, image: np.ndarray) -> None:
    box = np.array([[40.0, 40.0, 60.0, 60.0]], dtype=np.float32)
    mask = np.zeros((1, 100, 100), dtype=bool)
    mask[0, 40:60, 40:60] = True
    tracks.adopt_references(sv.Detections(xyxy=box, mask=mask, tracker_id=np.array([7])), [0], image)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("granted", ""),
        ("off", Refusal.OFF),
        ("untracked", Refusal.UNTRACKED),
        ("unknown track", Refusal.UNTRACKED),
        ("inconsistent mask", Refusal.MASK),
        ("no reference", Refusal.MASK),
        ("other anchor", Refusal.ANCHOR),
        ("unconfirmed anchor", Refusal.ANCHOR),
        ("too old", Refusal.AGE),
        ("reused enough", Refusal.REUSES),
        ("withdrawn", Refusal.NO_VERDICT),
        ("rejection without a record", Refusal.IDENTITY),
    ],
)
def test_refusal_names_why(case: str, expected: str) -> None:
    tracks = _tracks_with_verdict(
        passed=case != "rejection without a record", revalidate_s=0.0 if case == "off" else 3.0
    )
    pid, t, score, anchor = 7, 1.0, 0.9, 3
    if case == "untracked":
        pid = UNCONFIRMED
    elif case == "unknown track":
        pid = 8
    elif case == "inconsistent mask":
        score = 0.2
    elif case == "no reference":
        score = float("nan")
    elif case == "other anchor":
        anchor = 4
    elif case == "unconfirmed anchor":
        anchor = UNCONFIRMED
    elif case == "too old":
        t = 3.5
    elif case == "reused enough":
        assert tracks.reusable(7, 0.5, 0.9, 3) is not None and tracks.reusable(7, 0.5, 0.9, 3) is not None
    elif case == "withdrawn":
        tracks.remember(7, 0.5, 3, None)
    assert tracks.refusal(pid, t, score, anchor) == expected
    assert (tracks.reusable(pid, t, score, anchor) is None) == (expected != "")


def test_refusal_for_a_part_that_no_longer_looks_the_same() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[45:55, 45:55] = 200  # an open eye: a bright square
    tracks = _tracks_with_verdict()
    _with_look(tracks, image)
    box = np.array([40.0, 40.0, 60.0, 60.0])
    assert tracks.refusal(7, 1.0, 0.9, 3, tracks.appearance(7, image, box)) == ""
    closed = np.zeros_like(image)
    closed[49:51, 42:58] = 200  # the eye closed: a line
    assert tracks.refusal(7, 1.0, 0.9, 3, tracks.appearance(7, closed, box)) == Refusal.LOOK
