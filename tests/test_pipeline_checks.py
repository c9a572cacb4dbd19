"""The Labeler's label-trust rules on scripted stages: checks with a scope (the detector answers no_human, a
frame-scope failure rejects the frame), safe verdict reuse, the last accepted mask as reference, and a validator
error that never escapes ``judge``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from streamlabel.checks import split_detections
from streamlabel.config import Config
from streamlabel.config.target import AnchorConfig
from streamlabel.frames import FLAGGED_KEY, REJECTION_KEY, VERDICT_KEY, Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Candidate, Verdict
from streamlabel.tracking.streams import DROP_REFERENCE_AFTER
from tests.scripted import MARK, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter, frame_image

STEP_S = 0.2
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHECKS = ["anchor_visible", "part_visible", "no_human", "mask_on_part", "mask_quality"]


class ScriptValidator:
    """Answers every check true with ``confidence``, except the checks ``fails`` names for (frame index, k-th
    candidate of that frame in the call); records the frame index of every candidate it judged."""

    model_id = "script-validate"

    def __init__(
        self,
        confidence: float = 0.9,
        fails: dict[tuple[int, int], list[str]] | None = None,
        checks: Sequence[str] = CHECKS,
    ) -> None:
        self.confidence, self.fails, self.checks = confidence, fails or {}, list(checks)
        self.seen: list[int] = []

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        out, k = [], {}
        for item in items:
            frame = int(item.image[MARK])
            k[frame] = k.get(frame, -1) + 1
            self.seen.append(frame)
            failed = self.fails.get((frame, k[frame]), [])
            checks = {c: c not in failed for c in self.checks}
            out.append(
                Verdict(not failed, self.confidence, checks, "script", self.model_id, confidence_source="stated")
            )
        return out


class RaisingValidator(ScriptValidator):
    """Raises ``error`` on its first ``times`` calls, then answers like ScriptValidator."""

    def __init__(self, error: Exception, times: int) -> None:
        super().__init__()
        self.error, self.times, self.calls = error, times, 0

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return super().validate(items)


class RelinkingGrounder(ScriptedGrounder):
    """Two eyes per dog; from frame ``relink_from`` on, the first dog's eyes are reported for the second dog."""

    def __init__(self, relink_from: int) -> None:
        super().__init__()
        self.relink_from = relink_from

    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]:
        out = super().ground(images, anchors)
        for image, parts in zip(images, out, strict=True):
            if int(image[MARK]) >= self.relink_from:
                index = parts.data["anchor_index"]
                parts.data["anchor_index"] = np.where(index == 0, 1, index)
        return out


def walking_dog(n: int, speed_px: float = 4.0) -> dict[int, list[list[float]]]:
    return {i: [[20 + speed_px * i, 30, 80 + speed_px * i, 80]] for i in range(n)}


def frames_of(n: int, stream: str = "kitchen") -> list[Frame]:
    return [Frame(stream, i, i * STEP_S, T0 + timedelta(seconds=i * STEP_S), frame_image(i)) for i in range(n)]


def make(
    script: dict,
    validator: object,
    settings: dict | None = None,
    people: dict[int, float] | None = None,
    jumps: set[int] = frozenset(),
    grounder: ScriptedGrounder | None = None,
) -> Labeler:
    settings = dict(settings or {})  # these tests judge every frame: the novelty gate is off (test_pipeline_novelty)
    settings["tracking"] = {"novelty": {"enabled": False}, "revalidate_s": 0.0, **settings.get("tracking", {})}
    cfg = Config.model_validate(settings)
    detector = ScriptedDetector(script, people)
    stages = Stages(detector, grounder or ScriptedGrounder(), ScriptedSegmenter(jumps), validator)  # type: ignore[arg-type]
    return Labeler(cfg, stages)


def one_by_one(labeler: Labeler, frames: list[Frame]) -> list[FrameResult]:
    return [r for f in frames for r in labeler.label([f])]


def reused(results: list[FrameResult]) -> list[list[bool]]:
    return [[v is not None and v.reused for v in r.parts.data[VERDICT_KEY]] for r in results]


# ------------------------------------------------------------------------------------------- checks with a scope


def test_a_person_rejects_every_part_of_the_frame_without_asking_the_validator() -> None:
    validator = ScriptValidator()
    labeler = make(walking_dog(4), validator, people={2: 0.87, 3: 0.3})
    results = one_by_one(labeler, frames_of(4))
    assert 2 not in validator.seen and validator.seen.count(3) == 2  # 0.3 is below detector_min_confidence 0.4
    person = results[2]
    assert len(person.anchors) == 1 and set(person.anchors.data["class_name"]) == {"dog"}  # tracking got anchors only
    assert len(person.people) == 1 and person.people.data["class_name"].tolist() == ["person"]
    assert len(results[3].people) == 1 and len(results[1].people) == 0
    assert person.statuses() == ["rejected", "rejected"]
    assert person.parts.data[REJECTION_KEY].tolist() == ["reject_frame", "reject_frame"]
    verdict = person.parts.data[VERDICT_KEY][0]
    assert (verdict.passed, verdict.checks, verdict.confidence_source) == (False, {"no_human": False}, "detector")
    assert verdict.reason == "detector found person (0.87)" and verdict.model == "scripted-detect"
    assert results[3].statuses() == ["accepted", "accepted"]
    assert results[3].parts.data[REJECTION_KEY].tolist() == ["", ""]


@pytest.mark.parametrize(
    ("failed", "statuses", "rejections"),
    [
        ([], ["accepted", "accepted"], ["", ""]),
        (["no_human"], ["rejected", "rejected"], ["reject_frame", "reject_frame"]),  # one part fails the frame
        (["mask_on_part"], ["rejected", "accepted"], ["not_target", ""]),
        (["part_visible"], ["rejected", "accepted"], ["poor_label", ""]),
        (["part_visible", "mask_on_part"], ["rejected", "accepted"], ["not_target", ""]),  # the strongest on_fail
    ],
)
def test_a_failed_check_rejects_what_its_scope_covers(failed: list[str], statuses: list, rejections: list) -> None:
    labeler = make(walking_dog(3), ScriptValidator(fails={(2, 0): failed}))
    result = one_by_one(labeler, frames_of(3))[2]
    assert result.statuses() == statuses
    assert result.parts.data[REJECTION_KEY].tolist() == rejections
    if "no_human" in failed:  # the other part keeps its own answers and gains the frame's failure
        other = result.parts.data[VERDICT_KEY][1]
        assert not other.passed and other.failed_checks() == ["no_human"] and "no_human" in other.reason


def test_every_part_carries_its_flag() -> None:
    labeler = make(walking_dog(6), ScriptValidator(), jumps={4})
    results = one_by_one(labeler, frames_of(6))
    assert [r.parts.data[FLAGGED_KEY].tolist() for r in results] == [[False, False]] * 4 + [[True, True]] + [
        [False, False]
    ]
    assert results[4].statuses() == ["review", "review"] and results[4].parts.data[REJECTION_KEY].tolist() == ["", ""]


def test_a_frame_check_without_a_detector_class_costs_one_vlm_call_per_frame() -> None:
    checks = [
        {"name": "tidy_room", "question": "The room is tidy.", "scope": "frame", "on_fail": "reject_frame"},
        {"name": "mask_on_part", "question": "The mask is on the {part}.", "on_fail": "not_target"},
    ]
    validator = ScriptValidator(checks=["tidy_room", "mask_on_part"], fails={(4, 0): ["tidy_room"]})
    settings = {"tracking": {"revalidate_s": 10.0}, "target": {"validation": {"checks": checks}}}
    results = one_by_one(make(walking_dog(6), validator, settings), frames_of(6))
    # 0-1: both parts judged (unconfirmed, then first masks); from 2 on one part reuses, the other is asked.
    assert [validator.seen.count(i) for i in range(6)] == [2, 2, 1, 1, 1, 1]
    assert reused(results)[2:4] == [[False, True], [False, True]]
    assert results[4].statuses() == ["rejected", "rejected"]  # the fresh answer failed the frame for both
    assert results[4].parts.data[REJECTION_KEY].tolist() == ["reject_frame", "reject_frame"]


def test_a_part_found_for_two_overlapping_dogs_is_labeled_once_whatever_the_grounder() -> None:
    """The scripted grounder finds each eye once per anchor and filters nothing: the Labeler merges the copies."""
    validator = ScriptValidator()
    twins = {i: [[20, 30, 80, 80], [21, 30, 81, 80]] for i in range(3)}  # one dog found twice, boxes 1 px apart
    results = one_by_one(make(twins, validator), frames_of(3))
    assert [len(r.parts) for r in results] == [2, 2, 2]
    assert len(validator.seen) == 6
    np.testing.assert_allclose(results[2].parts.xyxy[:, 1], [40, 40])  # one eye each side, not one eye twice
    assert abs(results[2].parts.xyxy[0, 0] - results[2].parts.xyxy[1, 0]) >= 19


@pytest.mark.parametrize(
    ("names", "confidence", "anchors", "others"),
    [
        (["dog", "person", "dog", "cat"], [0.9, 0.9, 0.2, 0.9], 1, 2),  # a weak dog is no anchor; cat is another class
        (None, [0.9, 0.3], 1, 0),  # a backend that names no classes: every row is an anchor
        ([], [], 0, 0),
    ],
)
def test_split_detections(names: list[str] | None, confidence: list[float], anchors: int, others: int) -> None:
    n = len(confidence)
    data = {} if names is None else {"class_name": np.array(names, dtype=str)}
    found = sv.Detections(np.zeros((n, 4), np.float32), confidence=np.array(confidence, np.float32), data=data)
    got_anchors, got_others = split_detections(found, AnchorConfig(classes=["dog"], min_confidence=0.4))
    assert (len(got_anchors), len(got_others)) == (anchors, others)


def test_config_refuses_a_detector_class_that_is_an_anchor() -> None:
    with pytest.raises(ValueError, match=r"checks\[no_human\].detector_class 'person' is also an anchor class"):
        Config.model_validate({"target": {"anchor": {"classes": ["dog", "person"]}}})


# ------------------------------------------------------------------------------------------------- safe reuse


def test_reuse_is_refused_when_the_part_is_linked_to_another_anchor() -> None:
    two_dogs = {i: [[20, 30, 80, 80], [120, 30, 180, 80]] for i in range(6)}
    validator = ScriptValidator()
    labeler = make(two_dogs, validator, {"tracking": {"revalidate_s": 10.0}}, grounder=RelinkingGrounder(4))
    results = one_by_one(labeler, frames_of(6))
    assert results[3].parts.data["anchor_track_id"].tolist() == [1, 1, 2, 2]
    assert results[4].parts.data["anchor_track_id"].tolist() == [2, 2, 2, 2]  # the first dog's eyes re-linked
    assert reused(results)[2:] == [[True] * 4, [True] * 4, [False, False, True, True], [True] * 4]
    assert validator.seen.count(4) == 2


def test_reuse_is_refused_in_a_frame_with_a_person_and_resumes_after() -> None:
    validator = ScriptValidator()
    labeler = make(walking_dog(6), validator, {"tracking": {"revalidate_s": 10.0}}, people={3: 0.9})
    results = one_by_one(labeler, frames_of(6))
    assert reused(results) == [[False] * 2, [False] * 2, [True] * 2, [False] * 2, [True] * 2, [True] * 2]
    assert results[3].parts.data[VERDICT_KEY][0].confidence_source == "detector"
    assert [validator.seen.count(i) for i in range(6)] == [2, 2, 0, 0, 0, 0]


def test_reuse_stops_after_max_reuses() -> None:
    validator = ScriptValidator()
    labeler = make(walking_dog(8), validator, {"tracking": {"revalidate_s": 10.0, "max_reuses": 2}})
    results = one_by_one(labeler, frames_of(8))
    assert [row[0] for row in reused(results)] == [False, False, True, True, False, True, True, False]
    # The first frame's dog is not a confirmed track yet: its passing parts wait for a person (review).
    assert results[0].statuses() == ["review", "review"]
    assert all(r.statuses() == ["accepted", "accepted"] for r in results[1:])


def test_max_reuses_holds_inside_one_batch() -> None:
    """A batch is judged in runs: frame 2 reuses frame 1's verdict judged in the same batch, and the reuses a run
    grants count at once, so a batch reuses exactly as frames one by one do."""
    validator = ScriptValidator()
    labeler = make(walking_dog(9), validator, {"tracking": {"revalidate_s": 10.0, "max_reuses": 2}})
    frames = frames_of(9)
    results = labeler.label(frames[:3]) + labeler.label(frames[3:])
    assert [row[0] for row in reused(results)] == [False, False, True, True, False, True, True, False, True]
    assert len(validator.seen) == 2 * 4  # frames 0, 1, 4 and 7 judged


def test_a_verdict_below_the_review_threshold_is_never_reused() -> None:
    validator = ScriptValidator(confidence=0.7)  # passes, below review_threshold 0.8
    labeler = make(walking_dog(5), validator, {"tracking": {"revalidate_s": 10.0}})
    results = one_by_one(labeler, frames_of(5))
    assert not any(any(row) for row in reused(results))
    assert len(validator.seen) == 10 and all(r.statuses() == ["review", "review"] for r in results)


def test_a_failed_fresh_verdict_withdraws_the_accepted_one() -> None:
    validator = ScriptValidator(fails={(4, 0): ["part_visible"], (4, 1): ["part_visible"]})
    labeler = make(walking_dog(7), validator, {"tracking": {"revalidate_s": 10.0, "max_reuses": 2}})
    results = one_by_one(labeler, frames_of(7))
    # 4 is judged afresh (max_reuses) and fails (an eye closed): 5 may not reuse frame 1's verdict.
    assert [row[0] for row in reused(results)] == [False, False, True, True, False, False, True]
    assert results[4].statuses() == ["rejected", "rejected"] and results[5].statuses() == ["accepted", "accepted"]


def test_a_frame_failure_withdraws_only_the_verdict_that_failed() -> None:
    validator = ScriptValidator(fails={(4, 0): ["no_human"]})  # the VLM sees a person the detector missed
    labeler = make(walking_dog(6), validator, {"tracking": {"revalidate_s": 10.0, "max_reuses": 2}})
    results = one_by_one(labeler, frames_of(6))
    assert results[4].statuses() == ["rejected", "rejected"]
    assert results[4].parts.data[REJECTION_KEY].tolist() == ["reject_frame", "reject_frame"]
    assert reused(results)[5] == [False, True]  # the eye judged fine in frame 4 keeps its verdict
    assert results[5].statuses() == ["accepted", "accepted"]


# ------------------------------------------------------------------------------------------ the reference mask


def test_the_reference_stays_the_last_accepted_mask_after_two_bad_masks() -> None:
    labeler = make(walking_dog(8), ScriptValidator(), jumps={4, 5})
    results = one_by_one(labeler, frames_of(8))
    scores = [r.parts.data["consistency"] for r in results]
    np.testing.assert_allclose(scores[4], [0.0, 0.0])
    np.testing.assert_allclose(scores[5], [0.0, 0.0])  # still against frame 3's mask, not frame 4's
    np.testing.assert_allclose(scores[6], [1.0, 1.0])  # the good mask matches frame 3's: not flagged
    assert [r.statuses() for r in results[4:7]] == [["review"] * 2, ["review"] * 2, ["accepted"] * 2]


def test_an_unaccepted_first_mask_is_no_reference() -> None:
    fails = {(1, 0): ["mask_quality"], (1, 1): ["mask_quality"]}
    results = one_by_one(make(walking_dog(4), ScriptValidator(fails=fails)), frames_of(4))
    assert results[1].statuses() == ["rejected", "rejected"]
    assert np.isnan(results[2].parts.data["consistency"]).all()  # frame 1's masks were not accepted
    np.testing.assert_allclose(results[3].parts.data["consistency"], [1.0, 1.0])  # frame 2's were


def test_a_part_that_changed_for_good_gets_a_new_reference() -> None:
    bad = set(range(4, 4 + DROP_REFERENCE_AFTER + 2))  # the mask stays shifted: the part changed for good
    results = one_by_one(make(walking_dog(12), ScriptValidator(), jumps=bad), frames_of(12))
    flagged = [bool(r.parts.data[FLAGGED_KEY][0]) for r in results]
    n = DROP_REFERENCE_AFTER
    assert flagged[4 : 4 + n] == [True] * n  # flagged until the reference is dropped
    assert flagged[4 + n] is False and results[4 + n].statuses() == ["accepted", "accepted"]  # judged afresh
    assert flagged[4 + n + 1] is False  # consistent with its new reference


# --------------------------------------------------------------------------------------- a failing validator


def test_a_validator_error_keeps_candidates_pending_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    validator = RaisingValidator(TypeError("validate() got an unexpected keyword"), times=3)
    labeler = make(walking_dog(5), validator)
    with caplog.at_level(logging.ERROR, logger="streamlabel"):
        results = one_by_one(labeler, frames_of(5))
    assert [r.statuses() for r in results] == [["pending"] * 2] * 3 + [["accepted"] * 2] * 2
    assert all(v is None for r in results[:3] for v in r.parts.data[VERDICT_KEY])
    assert labeler.stage_errors == {"TypeError": 3}
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and "TypeError" in errors[0].getMessage() and errors[0].exc_info is not None
    assert not labeler.gate.paused  # an error is not an outage: the next batch asks again


# ------------------------------------------------------------------------------------- a track's record and look


def test_an_accept_that_the_tracks_record_contradicts_goes_to_review() -> None:
    """Twice 'not an eye' (mask_on_part, a not_target check) on one part track: one pass after that is not enough."""
    validator = ScriptValidator(fails={(1, 0): ["mask_on_part"], (2, 0): ["mask_on_part"]})
    results = one_by_one(make(walking_dog(6), validator), frames_of(6))
    assert [r.statuses()[0] for r in results] == ["review", "rejected", "rejected", "review", "accepted", "accepted"]
    assert all(r.statuses()[1] == "accepted" for r in results[1:])  # the other eye's record is clean


def test_one_false_reject_does_not_hold_back_a_track_with_a_good_record() -> None:
    validator = ScriptValidator(fails={(4, 0): ["mask_on_part"]})
    results = one_by_one(make(walking_dog(6), validator), frames_of(6))
    assert [r.statuses()[0] for r in results] == ["review", "accepted", "accepted", "accepted", "rejected", "accepted"]


def test_identity_evidence_fades_with_its_half_life() -> None:
    from streamlabel.config import TrackingConfig
    from streamlabel.tracking.streams import StreamTracks

    tracks = StreamTracks("cam", TrackingConfig(identity_half_life_s=10.0))
    low = tracks.add_identity(3, 0.0, 0.1)
    assert low == pytest.approx(np.log(0.1 / 0.9))
    assert tracks.add_identity(3, 10.0, None) == pytest.approx(low / 2)  # one half-life later, no new verdict
    assert tracks.add_identity(-1, 0.0, 0.1) == 0.0  # an unconfirmed part has no record


def test_a_confident_not_target_rejection_is_reused_while_the_record_agrees() -> None:
    """A nose stays a nose: its track's rejection stands in for the next frames, as an accepted eye's verdict does."""
    fails = {(i, 0): ["mask_on_part"] for i in range(1, 6)}
    validator = ScriptValidator(fails=fails)
    settings = {"tracking": {"revalidate_s": 10.0, "novelty": {"enabled": False}}}
    results = one_by_one(make(walking_dog(6), validator, settings), frames_of(6))
    assert [r.statuses()[0] for r in results[1:]] == ["rejected"] * 5
    assert [r.parts.data[REJECTION_KEY][0] for r in results[1:]] == ["not_target"] * 5
    assert [row[0] for row in reused(results)] == [False, False, True, True, True, True]
    assert [validator.seen.count(i) for i in range(6)] == [2, 2, 0, 0, 0, 0]  # the eye's verdict is reused too


def test_a_rejection_against_a_good_record_is_not_reused() -> None:
    validator = ScriptValidator(fails={(5, 0): ["mask_on_part"]})
    settings = {"tracking": {"revalidate_s": 10.0, "max_reuses": 1, "novelty": {"enabled": False}}}
    results = one_by_one(make(walking_dog(7), validator, settings), frames_of(7))
    assert [row[0] for row in reused(results)] == [False, False, True, False, True, False, False]
    assert results[5].statuses()[0] == "rejected"  # judged afresh (max_reuses), a false "not an eye"
    assert results[6].statuses()[0] == "accepted" and validator.seen.count(6) == 1  # asked again: its record says eye
