"""``Tracker``: follows the boxes of one stream and one class family across frames and gives them ids.

Each track has its own ``BoxKalman``; every ``update`` predicts the tracks to the frame's time stamp, matches them
to the detections (``associate``), corrects the matched ones, ages out the rest and starts tracks for the leftovers.

Ids: a track gets an id only once it is confirmed (``min_hits`` matched frames in a row, counting its first);
until then its rows carry ``tracker_id == UNCONFIRMED`` (-1). Ids count up from 1 per ``Tracker`` instance, are
never reused while it lives, and restart at 1 after ``reset()``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import supervision as sv

from streamlabel.tracking.association import MatchRounds
from streamlabel.tracking.kalman import BoxKalman, xyxy_to_z, z_to_xyxy

if TYPE_CHECKING:
    from streamlabel.config.tracking import TrackingConfig

log = logging.getLogger(__name__)

UNCONFIRMED = -1
SMOOTHED_KEY = "smoothed_xyxy"
# Optional input column: side (pixels) of the object that carries each detection (see ``BoxKalman.motion_side``).
MOTION_SIDE_KEY = "motion_side"
FIRST_ID = 1
# A detection matches by centre (``centre_distance``) only within GATE_STDS stds of where the track's filter expects
# the next centre: small fast boxes (eyes) have a wide gate, large slow ones (people at 25 fps) next to none.
GATE_STDS = 5.0
# A track that missed this many updates in a row is matched after the tracks seen more recently (DeepSORT's matching
# cascade, by staleness): its coasting prediction drifts, and must not take the detection of an object that a fresh
# track follows (a dog walking where a hidden one was heading). Lower trusts coasting tracks less and re-finds fewer
# people after an occlusion (measured on ``bench tracking --compare``: 2 to 6 all beat SORT, 4 did best).
STALE_AFTER_MISSES = 4


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker thresholds: the tracker's share of the YAML ``tracking`` section (``from_config``).

    Attributes:
        max_age_s: seconds a confirmed track lives without a match. Raising it bridges longer occlusions and
            missed detections, at the risk of handing an old id to a new object.
        min_hits: matched frames in a row before a track is confirmed and gets an id. Raising it drops more
            one-frame false detections and leaves the first frames of every object without an id.
        iou_threshold: IoU a predicted box and a detection need to match on overlap. Raising it splits fast
            movers into new tracks; lowering it may swap ids between neighbours.
        centre_distance: fallback for small boxes (eyes) that do not overlap from one frame to the next: a pair
            matches when its centres are closer than this many box diagonals. 0 turns the fallback off; raising it
            follows faster small objects and may swap ids between neighbouring small boxes (two eyes).
        process_noise: scales the Kalman process noise. Raising it follows changes of motion sooner and smooths less.
        measurement_noise: scales the Kalman measurement noise. Raising it trusts detections less and smooths more.
        low_score: detections scoring below this only match tracks that confident ones left over, and never start
            a track (ByteTrack's second round). 0 turns it off. Raising it keeps partly hidden objects (whose
            scores drop) on their tracks and keeps false low-scoring detections from starting tracks; too high and
            real objects detected with low scores never get an id.
    """

    max_age_s: float = 2.0
    min_hits: int = 2
    iou_threshold: float = 0.3
    centre_distance: float = 1.0
    process_noise: float = 1.75
    measurement_noise: float = 1.0
    low_score: float = 0.5

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> TrackerConfig:
        """The tracker's thresholds from the validated ``tracking`` config section."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})

    def __post_init__(self) -> None:
        checks = {
            "max_age_s": self.max_age_s >= 0,
            "min_hits": self.min_hits >= 1,
            "iou_threshold": 0 < self.iou_threshold <= 1,
            "centre_distance": self.centre_distance >= 0,
            "process_noise": self.process_noise > 0,
            "measurement_noise": self.measurement_noise > 0,
            "low_score": 0 <= self.low_score <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"tracking.{name}: out of range (got {getattr(self, name)!r})")


@dataclass
class _Track:
    """One followed object: its filter, its id (``UNCONFIRMED`` until confirmed) and its bookkeeping."""

    kalman: BoxKalman
    class_id: int | None
    last_seen_t: float
    last_xyxy: np.ndarray
    hits: int = 1
    track_id: int = UNCONFIRMED
    # Times of the updates since the last match (the gap a re-found track's motion is re-estimated over).
    gap_t: list[float] = dataclasses.field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return self.track_id != UNCONFIRMED


class Tracker:
    """A Kalman multi-object tracker for one stream and one class family; feed it frames in time order.

    ``update`` returns the input rows (same order, same data) with ``tracker_id`` set and the filtered boxes in
    ``data["smoothed_xyxy"]`` (float32 ``(N, 4)``). When ``class_id`` is set, tracks never match other classes.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = FIRST_ID
        self._last_t: float | None = None

    def reset(self, restart_ids: bool = True) -> None:
        """Forget every track and the time (for a new clip or a stream that reconnected).

        Args:
            restart_ids: restart ids at 1; False keeps counting, so ids stay unique for the tracker's life.
        """
        self._tracks = []
        if restart_ids:
            self._next_id = FIRST_ID
        self._last_t = None

    def update(
        self, detections: sv.Detections, t: float, hints: Mapping[int, np.ndarray] | None = None
    ) -> sv.Detections:
        """Track one frame's detections at time ``t`` (seconds, not before the previous frame); see the class doc.

        Args:
            detections: this frame's boxes.
            t: the frame's time stamp in seconds.
            hints: track id -> xyxy box to match that confirmed track at, instead of its Kalman prediction (a part
                carried along by its animal); the filters themselves are unchanged.
        """
        self._check_time(t)
        self._last_t = float(t)
        for track in self._tracks:
            track.kalman.advance(t)
        predicted = self._boxes(self._tracks)
        if hints:
            for i, track in enumerate(self._tracks):
                if track.confirmed and track.track_id in hints:
                    predicted[i] = hints[track.track_id]
        pairs, new_rows = self._match(detections, predicted)

        ids = np.full(len(detections), UNCONFIRMED, dtype=int)
        smoothed = np.asarray(detections.xyxy, dtype=np.float32).reshape(-1, 4).copy()
        measured = xyxy_to_z(detections.xyxy)
        sides = detections.data.get(MOTION_SIDE_KEY)
        matched = [self._tracks[i] for i, _ in pairs]
        for track, (_, det_index) in zip(matched, pairs, strict=True):
            if sides is not None:
                track.kalman.motion_side = float(sides[det_index])
            self._observe(track, measured[det_index], detections.xyxy[det_index], t)
            ids[det_index] = track.track_id
        if matched:
            smoothed[[j for _, j in pairs]] = self._boxes(matched)

        survivors = list(matched)
        matched_rows = {i for i, _ in pairs}
        for i, track in enumerate(self._tracks):
            if i not in matched_rows and self._alive(track, t):
                track.gap_t.append(float(t))
                survivors.append(track)
        for det_index in new_rows:
            track = self._start(detections, det_index, t)
            if sides is not None:
                track.kalman.motion_side = float(sides[det_index])
            ids[det_index] = track.track_id
            survivors.append(track)
        self._tracks = survivors
        # A shallow copy, not dataclasses.replace: Detections re-validates every field on construction (per frame).
        out = copy.copy(detections)
        out.tracker_id, out.data = ids, {**detections.data, SMOOTHED_KEY: smoothed}
        return out

    def _match(self, detections: sv.Detections, predicted: np.ndarray) -> tuple[list[tuple[int, int]], list[int]]:
        """(track index, detection index) pairs and the detections that start tracks, in three rounds, each between
        what the rounds before left over: confident detections by IoU with the predicted boxes (the tracks seen
        within ``STALE_AFTER_MISSES`` updates first, then the stale ones); low-scoring ones
        the same way (``low_score``: they never start a track); then confident ones by centre distance, within
        each track's gate (small fast boxes, ``centre_distance`` and ``GATE_STDS``)."""
        cfg = self.config
        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        scores = detections.confidence
        low = scores < cfg.low_score if scores is not None else np.zeros(len(xyxy), dtype=bool)
        classes = detections.class_id
        track_classes = np.array([track.class_id for track in self._tracks]) if classes is not None else None
        rounds = MatchRounds(predicted, xyxy, track_classes, classes)
        confident, weak = np.flatnonzero(~low).tolist(), np.flatnonzero(low).tolist()
        recent = {i: predicted[i] for i, track in enumerate(self._tracks) if not self._stale(track)}
        if recent and len(recent) < len(self._tracks):
            rounds.run(confident, cfg.iou_threshold, 0.0, boxes=recent)  # see STALE_AFTER_MISSES
        rounds.run(confident, cfg.iou_threshold, 0.0)
        rounds.run(weak, cfg.iou_threshold, 0.0)
        free = rounds.free_tracks()
        if cfg.centre_distance > 0 and free and len(rounds.matched_detections) < len(confident) + len(weak):
            rounds.run(confident, cfg.iou_threshold, self._reach(predicted, free))
        new_rows = [j for j in confident if j not in rounds.matched_detections]
        return sorted(rounds.pairs, key=lambda pair: pair[1]), new_rows

    @staticmethod
    def _stale(track: _Track) -> bool:
        return len(track.gap_t) >= STALE_AFTER_MISSES

    def _reach(self, predicted: np.ndarray, rows: list[int]) -> np.ndarray:
        """Per track (0 outside ``rows``), how many box diagonals away a detection may be to match by centre:
        ``centre_distance``, but no further than ``GATE_STDS`` stds of where its filter expects the next centre."""
        reach = np.zeros(len(predicted))
        boxes = predicted[rows]
        diagonal = np.maximum(np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), 1e-9)
        std = np.array([self._tracks[i].kalman.position_std for i in rows])
        reach[rows] = np.minimum(self.config.centre_distance, GATE_STDS * std / diagonal)
        return reach

    def _observe(self, track: _Track, z: np.ndarray, xyxy: np.ndarray, t: float) -> None:
        """Correct a matched track with measurement ``z``; after a gap, re-estimate its motion over the gap."""
        if track.gap_t:
            track.kalman.reobserve(z, t, track.gap_t)
        else:
            track.kalman.correct(z)
        track.gap_t = []
        track.last_xyxy = np.asarray(xyxy, dtype=np.float64)
        track.hits += 1
        track.last_seen_t = float(t)
        self._confirm(track)

    def active_ids(self) -> set[int]:
        """Ids of the confirmed tracks the tracker still holds (a track is dropped at the first ``update`` after
        it went ``max_age_s`` without a match)."""
        return {track.track_id for track in self._tracks if track.confirmed}

    @staticmethod
    def _boxes(tracks: list[_Track]) -> np.ndarray:
        """Current xyxy boxes ``(N, 4)`` of ``tracks``, converted in one call."""
        if not tracks:
            return np.zeros((0, 4))
        return z_to_xyxy(np.array([track.kalman.state for track in tracks]))

    def predict(self, t: float) -> np.ndarray:
        """Predicted xyxy boxes ``(M, 4)`` float32 at time ``t`` of the confirmed tracks still alive then.

        Rows are in ascending tracker id (``live_ids(t)``). Changes nothing: the next ``update`` may use the same ``t``.
        """
        live = self._live(t)
        return np.array([track.kalman.peek(t) for track in live], dtype=np.float32).reshape(-1, 4)

    def live_ids(self, t: float) -> np.ndarray:
        """The ids of the confirmed tracks alive at time ``t``, ascending: the row order of ``predict(t)``."""
        return np.array([track.track_id for track in self._live(t)], dtype=int)

    def _live(self, t: float) -> list[_Track]:
        self._check_time(t)
        live = [track for track in self._tracks if track.confirmed and self._alive(track, t)]
        return sorted(live, key=lambda track: track.track_id)

    def _check_time(self, t: float) -> None:
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f"frames must come in time order: t={t} is before the previous t={self._last_t}")

    def _alive(self, track: _Track, t: float) -> bool:
        """An unmatched track survives only if confirmed and seen within ``max_age_s`` of ``t``."""
        return track.confirmed and t - track.last_seen_t <= self.config.max_age_s

    def _confirm(self, track: _Track) -> None:
        if not track.confirmed and track.hits >= self.config.min_hits:
            track.track_id = self._next_id
            self._next_id += 1
            log.debug("track %s confirmed after %s hits", track.track_id, track.hits)

    def _start(self, detections: sv.Detections, index: int, t: float) -> _Track:
        cfg = self.config
        kalman = BoxKalman(detections.xyxy[index], t, cfg.process_noise, cfg.measurement_noise)
        class_id = int(detections.class_id[index]) if detections.class_id is not None else None
        track = _Track(kalman, class_id, float(t), np.asarray(detections.xyxy[index], dtype=np.float64))
        self._confirm(track)
        return track
