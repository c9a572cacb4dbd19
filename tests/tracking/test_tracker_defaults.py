"""The tracker's defaults and the staleness order of its first round (``STALE_AFTER_MISSES``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from streamlabel.config import Config
from streamlabel.config.tracking import TrackingConfig
from streamlabel.frames import ANCHOR_INDEX_KEY, Frame
from streamlabel.pipeline import Labeler, Stages
from streamlabel.tracking import tracker as tracker_module
from streamlabel.tracking.streams import StreamTracks
from streamlabel.tracking.tracker import UNCONFIRMED, Tracker, TrackerConfig
from tests.scripted import (
    MARK,
    CountingValidator,
    ScriptedDetector,
    ScriptedGrounder,
    ScriptedSegmenter,
    frame_image,
)

SIDE = 100.0


def _boxes(x0s: list[float], scores: list[float] | None = None) -> sv.Detections:
    xyxy = np.array([[x, 100.0, x + SIDE, 100.0 + SIDE] for x in x0s], dtype=np.float32).reshape(-1, 4)
    conf = np.full(len(xyxy), 0.9) if scores is None else np.array(scores)
    return sv.Detections(xyxy=xyxy, confidence=conf.astype(np.float32))


def _crossing(tracker: Tracker) -> list[list[int]]:
    """Track A walks right at 34 px/s (1 fps) for 6 s, then is hidden, heading for still track B at x=300. In the
    5th second of A's absence B's box jitters 30 px towards where A would be: B's own track overlaps it with IoU
    0.54, A's coasting prediction (x=340) with 0.82."""
    ids = []
    for t in range(6):
        ids.append(tracker.update(_boxes([34.0 * t, 300.0]), float(t)).tracker_id.tolist())
    for t in range(6, 10):
        ids.append(tracker.update(_boxes([300.0]), float(t)).tracker_id.tolist())
    ids.append(tracker.update(_boxes([330.0]), 10.0).tracker_id.tolist())
    return ids


def test_a_stale_track_never_takes_the_detection_of_a_track_seen_last_frame() -> None:
    ids = _crossing(Tracker(TrackerConfig(min_hits=1, max_age_s=10.0)))
    assert ids[0] == [1, 2] and ids[-1] == [2]


def test_without_the_staleness_order_the_coasting_track_steals_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scene above is one where the order matters: with it turned off, A's prediction wins."""
    monkeypatch.setattr(tracker_module, "STALE_AFTER_MISSES", 10**6)
    ids = _crossing(Tracker(TrackerConfig(min_hits=1, max_age_s=10.0)))
    assert ids[-1] == [1]


def test_the_config_and_the_tracker_share_their_defaults() -> None:
    assert TrackerConfig.from_config(TrackingConfig()) == TrackerConfig()
    assert (TrackerConfig().low_score, TrackerConfig().process_noise) == (0.5, 1.75)


def test_by_default_a_weak_anchor_extends_a_track_and_never_starts_one() -> None:
    tracker = Tracker(TrackerConfig.from_config(TrackingConfig(min_hits=1)))
    ids = [tracker.update(_boxes([100.0], [s]), 0.5 * i).tracker_id.tolist() for i, s in enumerate([0.45, 0.9, 0.45])]
    assert ids == [[UNCONFIRMED], [1], [1]]


def test_parts_are_tracked_whatever_their_grounding_score() -> None:
    """low_score is a detector score: a part grounded at 0.3 (above Grounding DINO's box_threshold) gets a track."""
    tracks = StreamTracks("cam", TrackingConfig(min_hits=1))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    image = np.zeros((300, 600, 3), dtype=np.uint8)
    for i in range(2):
        frame = Frame("cam", i, 0.5 * i, t0, image)
        anchors = tracks.track_anchors(frame, _boxes([100.0]))
        part = sv.Detections(
            xyxy=np.array([[150.0, 120.0, 160.0, 130.0]], dtype=np.float32),
            confidence=np.array([0.3], dtype=np.float32),
            data={ANCHOR_INDEX_KEY: np.array([0])},
        )
        parts = tracks.track_parts(frame, anchors, part)
    assert parts.tracker_id.tolist() == [1]


class _ScoredDetector(ScriptedDetector):
    """ScriptedDetector whose dog scores ``scores[frame index]``."""

    def __init__(self, script: dict[int, list[list[float]]], scores: list[float]) -> None:
        super().__init__(script)
        self.scores = scores

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        out = super().detect(images)
        for image, found in zip(images, out, strict=True):
            found.confidence = np.full(len(found), self.scores[int(image[MARK])], dtype=np.float32)
        return out


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        pytest.param([0.45] * 4, [[UNCONFIRMED]] * 4, id="a-weak-dog-never-gets-an-id"),
        pytest.param([0.9, 0.9, 0.45, 0.45], [[UNCONFIRMED], [1], [1], [1]], id="a-weak-dog-keeps-its-track"),
        pytest.param([0.3, 0.9, 0.9, 0.9], [[], [UNCONFIRMED], [1], [1]], id="below-min-confidence-no-anchor"),
    ],
)
def test_the_labeler_tracks_anchors_with_the_detectors_scores(scores: list[float], expected: list[list[int]]) -> None:
    """The detector's scores reach the anchor tracker: between target.anchor.min_confidence (0.4) and low_score
    (0.5) a dog only extends a track."""
    script = {i: [[20.0 + 4 * i, 30.0, 80.0 + 4 * i, 80.0]] for i in range(4)}
    cfg = Config.model_validate({"tracking": {"novelty": {"enabled": False}}})
    stages = Stages(_ScoredDetector(script, scores), ScriptedGrounder(), ScriptedSegmenter(), CountingValidator())
    labeler = Labeler(cfg, stages)  # type: ignore[arg-type]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    frames = [Frame("cam", i, 0.5 * i, t0 + timedelta(seconds=0.5 * i), frame_image(i)) for i in range(4)]
    ids = [r.anchors.tracker_id.tolist() for f in frames for r in labeler.label([f])]
    assert ids == expected
