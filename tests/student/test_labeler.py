"""The student in the Labeler on scripted stages: the gate skips grounding and segmentation, every part gets its
disagreement, the parts only the student finds become review rows, and a failing student never stops labeling."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from streamlabel.config import Config
from streamlabel.frames import DISAGREEMENT_KEY, SOURCE_KEY, VERDICT_KEY, Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.student import MissedParts, Student
from tests.fixtures.student import ScriptedFinder
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter, frame_image

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOG = [20.0, 30.0, 80.0, 80.0]  # ScriptedGrounder puts eyes at [30, 40, 40, 50] and [50, 40, 60, 50]
EYE = [30.0, 40.0, 40.0, 50.0]


class CountingSegmenter(ScriptedSegmenter):
    """Records how many parts each frame sent to segmentation."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[int] = []

    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]:
        self.parts += [len(p) for p in parts]
        return super().segment(images, parts)


def frames_of(n: int) -> list[Frame]:
    return [Frame("kitchen", i, i * 0.2, T0 + timedelta(seconds=i * 0.2), frame_image(i)) for i in range(n)]


def make(
    finder: object, settings: dict | None = None, people: dict[int, float] | None = None, confidence: float = 0.9
) -> tuple[Labeler, ScriptedGrounder, CountingSegmenter, Student]:
    settings = dict(settings or {})
    settings["tracking"] = {"novelty": {"enabled": False}, **settings.get("tracking", {})}
    cfg = Config.model_validate(settings)
    student = Student(finder, cfg.models.student, "eye", "student:scripted")  # type: ignore[arg-type]
    grounder, segmenter = ScriptedGrounder(), CountingSegmenter()
    still_dog = {i: [DOG] for i in range(10)}
    stages = Stages(
        ScriptedDetector(still_dog, people),
        grounder,
        segmenter,
        CountingValidator(confidence),  # type: ignore[arg-type]
        student,
    )
    return Labeler(cfg, stages), grounder, segmenter, student


@pytest.mark.parametrize("tracking", [True, False])
def test_the_gate_skips_grounding_and_segmentation_where_the_student_finds_nothing(tracking: bool) -> None:
    finder = ScriptedFinder({0: [(EYE, 0.9)], 2: [(EYE, 0.8)]})
    settings = {"models": {"student": {"gate": True}}, "tracking": {"enabled": tracking}}
    labeler, grounder, segmenter, student = make(finder, settings)
    results = labeler.label(frames_of(4))
    assert finder.calls == [[0, 1, 2, 3]]  # one batched call for the whole batch
    assert grounder.grounded == [0, 2]
    assert segmenter.parts == [2, 0, 2, 0]
    assert [len(r.parts) for r in results] == [2, 0, 2, 0]
    assert [len(r.anchors) for r in results] == [1, 1, 1, 1]  # gated frames keep their dog (tracks, clips)
    assert student.counts["gated"] == 2 and student.counts["frames"] == 4


def test_without_the_gate_every_frame_is_grounded() -> None:
    labeler, grounder, segmenter, _ = make(ScriptedFinder({}))
    results = labeler.label(frames_of(3))
    assert grounder.grounded == [0, 1, 2] and segmenter.parts == [2, 2, 2]
    assert [r.parts.data[DISAGREEMENT_KEY].tolist() for r in results] == [[1.0, 1.0]] * 3  # the student missed both


def test_the_gate_also_skips_frames_between_groundings() -> None:
    """With ground_every 3, frames 1-2 would segment predicted boxes; the closed gate leaves them without parts."""
    finder = ScriptedFinder({0: [(EYE, 0.9)], 3: [(EYE, 0.9)], 4: [(EYE, 0.9)]})
    settings = {"models": {"student": {"gate": True}}, "tracking": {"ground_every": 3}}
    labeler, grounder, segmenter, _ = make(finder, settings)
    results = [r for f in frames_of(6) for r in labeler.label([f])]
    assert grounder.grounded == [0, 3]
    assert segmenter.parts == [2, 0, 0, 2, 2, 0]  # frame 4: predicted parts, the gate open
    assert [len(r.parts) for r in results] == [2, 0, 0, 2, 2, 0]


def test_parts_get_their_disagreement_and_the_students_own_finds_become_review_rows() -> None:
    finder = ScriptedFinder(
        {
            0: [
                (EYE, 0.9),  # agrees with the first eye
                ([55.0, 40.0, 65.0, 50.0], 0.8),  # the second eye, half off: IoU 1/3
                ([62.0, 60.0, 72.0, 70.0], 0.7),  # inside the dog, no pipeline part there
                ([150.0, 90.0, 160.0, 100.0], 0.6),  # outside every dog: not offered
            ]
        }
    )
    labeler, _, _, student = make(finder, {"tracking": {"enabled": False}})  # tracked, a first sight is reviewed
    (r,) = labeler.label(frames_of(1))
    assert r.statuses() == ["accepted", "accepted", "review"]
    assert r.parts.data[DISAGREEMENT_KEY] == pytest.approx([0.0, 1 - 1 / 3, 0.7], abs=1e-6)
    assert r.parts.data[SOURCE_KEY].tolist() == ["pipeline", "pipeline", "student"]
    assert r.parts.data[VERDICT_KEY][2] is None and r.parts.tracker_id is None
    np.testing.assert_allclose(r.parts.xyxy[2], [62, 60, 72, 70])
    assert r.parts.mask is not None and r.parts.mask[2].sum() == 100
    assert (student.counts["offered"], student.counts["outside_anchor"], student.counts["disagreeing"]) == (1, 1, 1)


def test_a_frame_with_a_person_gets_no_student_rows() -> None:
    finder = ScriptedFinder({0: [([62.0, 60.0, 72.0, 70.0], 0.7)]})
    labeler, _, _, student = make(finder, people={0: 0.9})
    (r,) = labeler.label(frames_of(1))
    assert r.statuses() == ["rejected", "rejected"]  # the person rejects the frame; the student adds nothing
    assert student.counts["not_offered"] == 1 and student.counts["offered"] == 0


def test_a_frame_emptied_after_comparison_gets_no_student_rows() -> None:
    """The novelty gate or the budget empties a frame's parts in judge: its missed parts are not offered either."""
    finder = ScriptedFinder({})
    student = Student(finder, Config().models.student, "eye", "student:scripted")  # type: ignore[arg-type]
    anchors = sv.Detections(xyxy=np.array([DOG], dtype=np.float32))
    finds = ScriptedFinder({0: [([62.0, 60.0, 72.0, 70.0], 0.7)]}).find([frame_image(0)])[0]
    missed = MissedParts(finds, np.array([0.7]), np.array([0]), parts_seen=2)
    result = FrameResult(frames_of(1)[0], anchors, sv.Detections.empty())
    student.add_finds([result], [missed])
    assert len(result.parts) == 0 and student.counts["not_offered"] == 1
    kept = MissedParts(finds, np.array([0.7]), np.array([0]), parts_seen=0)  # it had no parts to begin with
    student.add_finds([result], [kept])
    assert len(result.parts) == 1 and result.parts.data[SOURCE_KEY].tolist() == ["student"]


def test_a_student_failing_mid_run_never_stops_labeling(caplog: pytest.LogCaptureFixture) -> None:
    finder = ScriptedFinder({1: [(EYE, 0.9)], 2: [(EYE, 0.9)]}, fail_on=[1, 2])
    settings = {"models": {"student": {"gate": True}}, "tracking": {"enabled": False}}
    labeler, grounder, _, student = make(finder, settings)
    with caplog.at_level(logging.INFO, logger="streamlabel.student.student"):
        results = [r for f in frames_of(4) for r in labeler.label([f])]
    assert grounder.grounded == [0, 1, 2]  # failing: the gate stays open; answering: frame 3 (nothing found) gated
    assert [r.statuses() for r in results] == [["accepted"] * 2, ["accepted"] * 2, ["accepted"] * 2, []]
    assert DISAGREEMENT_KEY not in results[0].parts.data and DISAGREEMENT_KEY in results[2].parts.data
    assert student.counts["errors"] == 2
    failures = [r for r in caplog.records if "failed on a batch" in r.getMessage()]
    assert len(failures) == 1 and any("answers again" in r.getMessage() for r in caplog.records)


def test_student_rows_merge_with_tracked_parts() -> None:
    """Tracked parts carry track ids and tracking keys: the student's row gets no track and blank tracking values."""
    labeler, _, _, student = make(ScriptedFinder({0: [([62.0, 60.0, 72.0, 70.0], 0.7)]}))
    (r,) = labeler.label(frames_of(1))
    assert r.parts.tracker_id is not None and r.parts.tracker_id.tolist()[2] == -1
    assert r.parts.data[SOURCE_KEY].tolist() == ["pipeline", "pipeline", "student"]
    assert r.statuses()[2] == "review" and student.counts["offered"] == 1
    assert {len(v) for v in r.parts.data.values()} == {3}  # every data key has a value for every row
