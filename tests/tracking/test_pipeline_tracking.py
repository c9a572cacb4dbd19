"""Labeler with tracking, on scripted stages: ids persist, inconsistent masks go to review, ground_every skips
grounding calls, verdicts are reused within revalidate_s, finished anchor tracks become segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.tracking.tracker import UNCONFIRMED
from tests.scripted import (
    CountingValidator,
    ScriptedDetector,
    ScriptedGrounder,
    ScriptedSegmenter,
    eye_boxes,
    frame_image,
)

STEP_S = 0.2  # 5 fps sampling
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def walking_dog(n: int, speed_px: float = 4.0) -> dict[int, list[list[float]]]:
    """One dog box moving right by ``speed_px`` per frame, for frames 0..n-1."""
    return {i: [[20 + speed_px * i, 30, 80 + speed_px * i, 80]] for i in range(n)}


def frames_of(stream: str, indices: range, start_seq: int = 0) -> list[Frame]:
    return [
        Frame(
            stream,
            start_seq + k,
            (start_seq + k) * STEP_S,
            T0 + timedelta(seconds=(start_seq + k) * STEP_S),
            frame_image(i),
        )
        for k, i in enumerate(indices)
    ]


def make(script, tracking: dict | None = None, jumps: set[int] = frozenset()) -> tuple[Labeler, Stages]:
    # These tests judge every frame: the novelty gate is off (tests/test_pipeline_novelty.py).
    cfg = Config.model_validate({"tracking": {"novelty": {"enabled": False}, **(tracking or {})}})
    stages = Stages(ScriptedDetector(script), ScriptedGrounder(), ScriptedSegmenter(jumps), CountingValidator())
    return Labeler(cfg, stages), stages


def one_by_one(labeler: Labeler, frames: list[Frame]) -> list[FrameResult]:
    return [r for f in frames for r in labeler.label([f])]


def test_ids_persist_across_frames_and_parts_link_to_their_anchor() -> None:
    labeler, _ = make(walking_dog(6))
    results = one_by_one(labeler, frames_of("kitchen", range(6)))
    assert [r.anchors.tracker_id.tolist() for r in results] == [[UNCONFIRMED]] + [[1]] * 5
    assert [r.parts.tracker_id.tolist() for r in results] == [[UNCONFIRMED] * 2] + [[1, 2]] * 5
    assert [r.parts.data["anchor_track_id"].tolist() for r in results] == [[UNCONFIRMED] * 2] + [[1, 1]] * 5
    # The first frame's dog is not a confirmed track yet: its passing parts wait for a person (review).
    assert results[0].statuses() == ["review", "review"]
    assert all(r.statuses() == ["accepted", "accepted"] for r in results[1:])


def test_streams_in_one_batch_have_their_own_ids() -> None:
    script = {**walking_dog(4), **{10 + i: [[100, 20, 160, 70], [10, 60, 70, 110]] for i in range(4)}}
    labeler, _ = make(script)
    a, b = frames_of("a", range(4)), frames_of("b", range(10, 14))
    batch = [f for pair in zip(a, b, strict=True) for f in pair]  # interleaved: a0 b0 a1 b1 ...
    results = labeler.label(batch)
    last_a, last_b = results[-2], results[-1]
    assert last_a.anchors.tracker_id.tolist() == [1]
    assert last_b.anchors.tracker_id.tolist() == [1, 2]
    assert last_b.parts.tracker_id.tolist() == [1, 2, 3, 4]
    assert last_b.parts.data["anchor_track_id"].tolist() == [1, 1, 2, 2]


@pytest.mark.parametrize(("policy", "expected"), [("review", "review"), ("reject", "rejected")])
def test_a_mask_that_jumps_is_flagged_and_never_accepted(policy: str, expected: str) -> None:
    labeler, _ = make(walking_dog(6), {"on_inconsistent": policy}, jumps={4})
    results = one_by_one(labeler, frames_of("kitchen", range(6)))
    scores = [r.parts.data["consistency"] for r in results]
    assert np.isnan(scores[0]).all() and np.isnan(scores[1]).all()  # no previous mask of a confirmed track yet
    np.testing.assert_allclose(scores[2], [1.0, 1.0])  # the box moved 4 px, the mask moved with it
    # Frame 4: each 10x10 mask lands 20 px right of its box: no overlap with the moved previous mask.
    np.testing.assert_allclose(scores[4], [0.0, 0.0])
    assert results[4].statuses() == [expected, expected]
    assert results[3].statuses() == ["accepted", "accepted"]


def test_ground_every_skips_grounding_and_segments_predicted_boxes() -> None:
    labeler, stages = make(walking_dog(7, speed_px=2.0), {"ground_every": 3})
    results = labeler.label(frames_of("kitchen", range(7)))  # one batch: predictions use the same batch's tracks
    assert stages.grounder.grounded == [0, 3, 6]
    # Frames 1-2: the part tracks from frame 0 are not confirmed yet (min_hits 2), so there is nothing to predict.
    assert [len(r.parts) for r in results] == [2, 0, 0, 2, 2, 2, 2]
    for r in results[4:6]:
        assert r.parts.data["predicted"].all()
        assert r.parts.tracker_id.tolist() == [1, 2]
        np.testing.assert_allclose(r.parts.xyxy, eye_boxes(r.anchors.xyxy[0]), atol=2.0)
    assert not results[3].parts.data["predicted"].any()


def test_skipped_frames_carry_parts_with_their_dog_and_keep_their_ids() -> None:
    # 5 px per frame: between two grounded frames an eye moves 15 px, more than its 10 px width and nearer to where
    # the other eye was. Predicted and re-grounded parts follow their dog's track, so the ids do not swap.
    labeler, stages = make(walking_dog(10, speed_px=5.0), {"ground_every": 3, "min_hits": 1})
    results = labeler.label(frames_of("kitchen", range(10)))
    assert stages.grounder.grounded == [0, 3, 6, 9]
    assert [r.parts.tracker_id.tolist() for r in results] == [[1, 2]] * 10
    for r in results:
        np.testing.assert_allclose(r.parts.data["smoothed_xyxy"], eye_boxes(r.anchors.xyxy[0]), atol=2.5)


def test_verdicts_are_reused_within_revalidate_s_while_consistent() -> None:
    labeler, stages = make(walking_dog(8), {"revalidate_s": 0.5}, jumps={5})
    results = one_by_one(labeler, frames_of("kitchen", range(8)))
    reused = [[v.reused for v in r.parts.data["verdict"]] for r in results]
    # 0: unconfirmed; 1: first mask of the tracks; 2-3: reused (0.2 and 0.4 s old); 4: 0.6 s old, judged again;
    # 5: the mask jumped, judged again (and flagged); 6: consistent with the mask before the jump (the reference),
    # frame 4's verdict is 0.4 s old: reused; 7: that verdict is 0.6 s old, judged again.
    assert reused == [
        [False] * 2,
        [False] * 2,
        [True] * 2,
        [True] * 2,
        [False] * 2,
        [False] * 2,
        [True] * 2,
        [False] * 2,
    ]
    assert stages.validator.judged == 2 * 5
    assert results[2].statuses() == ["accepted", "accepted"]
    assert results[5].statuses() == ["review", "review"]
    assert results[6].statuses() == ["accepted", "accepted"]


def test_revalidate_0_validates_every_frame() -> None:
    labeler, stages = make(walking_dog(5), {"revalidate_s": 0.0})
    results = one_by_one(labeler, frames_of("kitchen", range(5)))
    assert stages.validator.judged == 10
    assert not any(v.reused for r in results for v in r.parts.data["verdict"])


def test_the_default_reuses_accepted_verdicts() -> None:
    """A user gets ``revalidate_s`` 3 s and ``max_reuses`` 5: frames 2-6 reuse frame 1's verdict, 7 is judged."""
    labeler, stages = make(walking_dog(8))
    results = one_by_one(labeler, frames_of("kitchen", range(8)))
    assert [bool(r.parts.data["verdict"][0].reused) for r in results] == [False, False] + [True] * 5 + [False]
    assert stages.validator.judged == 2 * 3


def test_finished_anchor_tracks_become_segments() -> None:
    script = walking_dog(10)  # frames 10.. have no dog
    labeler, _ = make(script, {"max_age_s": 0.5, "clip_min_s": 1.0})
    frames = frames_of("kitchen", range(14))
    one_by_one(labeler, frames[:12])
    assert labeler.finished_segments() == []  # the track is still within max_age_s
    one_by_one(labeler, frames[12:])
    (segment,) = labeler.finished_segments()
    assert (segment.stream, segment.track_id, segment.class_name) == ("kitchen", 1, "dog")
    assert segment.start_pts == pytest.approx(STEP_S) and segment.end_pts == pytest.approx(9 * STEP_S)
    assert segment.frame_ids == tuple(f.frame_id for f in frames[1:10])
    assert labeler.finished_segments() == []  # popped


def test_end_stream_closes_open_segments_and_keeps_ids_counting() -> None:
    labeler, _ = make(walking_dog(8), {"clip_min_s": 0.5})
    one_by_one(labeler, frames_of("kitchen", range(8)))
    (segment,) = labeler.end_stream("kitchen")
    assert segment.track_id == 1 and len(segment.frame_ids) == 7
    assert labeler.end_stream("kitchen") == [] and labeler.end_stream("never-seen") == []
    # The stream comes back with its clock restarted: new tracks, new ids.
    again = one_by_one(labeler, frames_of("kitchen", range(3)))
    assert again[-1].anchors.tracker_id.tolist() == [2]


def test_short_tracks_make_no_segment() -> None:
    labeler, _ = make(walking_dog(3), {"clip_min_s": 1.0})
    one_by_one(labeler, frames_of("kitchen", range(3)))
    assert labeler.end_stream("kitchen") == []


def test_tracking_off_grounds_every_frame_without_ids() -> None:
    labeler, stages = make(walking_dog(4), {"enabled": False, "ground_every": 3})
    results = labeler.label(frames_of("kitchen", range(4)))
    assert stages.grounder.grounded == [0, 1, 2, 3]
    assert all(r.parts.tracker_id is None for r in results)
    assert labeler.finished_segments() == []
