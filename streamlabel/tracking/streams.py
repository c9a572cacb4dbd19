"""Per-stream tracking state for the Labeler: anchor and part trackers, part→anchor links, each part track's
reference mask (its last accepted one), its reusable verdict and open track segments.

Frames of one stream must come in order; a frame whose ``pts`` goes back in time (a reconnect that restarted the
clock) closes the stream's segments and forgets its tracks, but ids keep counting up: they stay unique per stream
for the life of the process.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import supervision as sv
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.config.tracking import TrackingConfig
from streamlabel.frames import ANCHOR_INDEX_KEY, Frame
from streamlabel.stages.base import Verdict
from streamlabel.tracking.appearance import appearance_patch, patch_similarity
from streamlabel.tracking.consistency import consistency_score
from streamlabel.tracking.part_memory import PartMemory, carried_box
from streamlabel.tracking.reuse import Refusal as Refusal  # re-exported: callers read refusals from here
from streamlabel.tracking.reuse import add_identity, refusal_of
from streamlabel.tracking.segments import SegmentBook, TrackSegment
from streamlabel.tracking.tracker import MOTION_SIDE_KEY, SMOOTHED_KEY, UNCONFIRMED, Tracker, TrackerConfig

log = logging.getLogger(__name__)

ANCHOR_TRACK_KEY = "anchor_track_id"
CONSISTENCY_KEY = "consistency"
PREDICTED_KEY = "predicted"
# A track's reference mask is its last accepted one; after this many flagged masks in a row it is dropped (the part
# really changed: a head turn, an eye that stays closed) and the next mask is judged without one. Bad masks in a row
# (SAM2 took the other eye twice) stay flagged until then, and never become the reference.
DROP_REFERENCE_AFTER = 3


class StreamTracks:
    """Tracking state of one stream; see the module doc. Feed it every frame of the stream in order."""

    def __init__(self, stream: str, cfg: TrackingConfig) -> None:
        self.stream = stream
        self.cfg = cfg
        tracker_cfg = TrackerConfig.from_config(cfg)
        self.anchors = Tracker(tracker_cfg)
        # low_score is a detector score: Grounding DINO's part scores sit on another scale (box_threshold 0.35)
        self.parts = Tracker(dataclasses.replace(tracker_cfg, low_score=0.0))
        self.segments = SegmentBook(cfg.clip_min_s, cfg.clip_max_s)
        self.finished: list[TrackSegment] = []
        self._memory: dict[int, PartMemory] = {}
        self._frames_seen = 0
        self._anchor_t: float | None = None
        self._part_t: float | None = None

    # ------------------------------------------------------------------------------------------------ anchors

    def begin(self, frame: Frame) -> bool:
        """Count the frame; True when Grounding DINO should run on it (every ``ground_every``-th frame)."""
        ground = self._frames_seen % self.cfg.ground_every == 0
        self._frames_seen += 1
        return ground

    def track_anchors(self, frame: Frame, anchors: sv.Detections) -> sv.Detections:
        """Give the frame's anchors track ids and record them in the open segments."""
        if self._anchor_t is not None and frame.pts < self._anchor_t:
            log.warning("%s: pts went back to %.3f s, closing its tracks", self.stream, frame.pts)
            self.finished += self.segments.close()
            self.anchors.reset(restart_ids=False)
        self._anchor_t = frame.pts
        tracked = self.anchors.update(anchors, frame.pts)
        ids = tracked.tracker_id
        names = tracked.data.get(CLASS_NAME_DATA_FIELD, np.array(["object"] * len(tracked)))
        confirmed = ids != UNCONFIRMED
        self.segments.see(frame, ids[confirmed].tolist(), [str(n) for n in np.asarray(names)[confirmed]])
        self.finished += self.segments.close(keep=self.anchors.active_ids())
        return tracked

    def end(self) -> list[TrackSegment]:
        """The stream ended: close every open segment and forget the tracks (ids keep counting)."""
        self.finished += self.segments.close()
        self.anchors.reset(restart_ids=False)
        self.parts.reset(restart_ids=False)
        self._memory.clear()
        self._anchor_t = self._part_t = None
        out, self.finished = self.finished, []
        return out

    def pop_finished(self) -> list[TrackSegment]:
        out, self.finished = self.finished, []
        return out

    # -------------------------------------------------------------------------------------------------- parts

    def _check_part_time(self, t: float) -> None:
        if self._part_t is not None and t < self._part_t:
            self.parts.reset(restart_ids=False)
            self._memory.clear()
        self._part_t = t

    def track_parts(self, frame: Frame, anchors: sv.Detections, parts: sv.Detections) -> sv.Detections:
        """Give grounded parts track ids and link each part track to the track of its anchor.

        A part track that missed the stream's previous frame (a blink, an occlusion, frames Grounding DINO skipped)
        is matched at its last box carried along by its anchor's motion, not at its own coasting prediction: eyes
        move with the dog, and two eyes would otherwise swap ids when the dog moved while they were not seen.
        """
        previous_t = self._part_t
        self._check_part_time(frame.pts)
        index = np.asarray(parts.data.get(ANCHOR_INDEX_KEY, np.zeros(len(parts), dtype=int)), dtype=int)
        anchor_boxes = np.asarray(anchors.data.get(SMOOTHED_KEY, anchors.xyxy), dtype=np.float64).reshape(-1, 4)
        parts = _with_motion_sides(parts, anchor_boxes, index)
        tracked = self.parts.update(parts, frame.pts, hints=self._carry_hints(anchors, previous_t))
        tracked.data.pop(MOTION_SIDE_KEY, None)
        self._link(frame.pts, tracked, anchors, anchor_boxes, index)
        self._forget_dead()
        return tracked

    def _carry_hints(self, anchors: sv.Detections, previous_t: float | None) -> dict[int, np.ndarray]:
        """Where to match the part tracks that missed the previous frame: their carried boxes (``carried_box``)."""
        hints = {}
        if previous_t is not None:
            for pid, memory in self._memory.items():
                carried = carried_box(memory, anchors) if memory.seen_t < previous_t else None
                if carried is not None:
                    hints[pid] = carried
        return hints

    def _link(
        self, t: float, tracked: sv.Detections, anchors: sv.Detections, anchor_boxes: np.ndarray, index: np.ndarray
    ) -> None:
        """Link every tracked part to its anchor's track (``data["anchor_track_id"]``) and record, per confirmed
        part track, its confidence and where it and its anchor were seen at ``t``."""
        smoothed = np.asarray(tracked.data[SMOOTHED_KEY], dtype=np.float64).reshape(-1, 4)
        anchor_ids = np.asarray(anchors.tracker_id if anchors.tracker_id is not None else [], dtype=int)
        linked = anchor_ids[index] if len(anchor_ids) else np.full(len(tracked), UNCONFIRMED, dtype=int)
        tracked.data[ANCHOR_TRACK_KEY] = linked.astype(int)
        tracked.data[PREDICTED_KEY] = np.zeros(len(tracked), dtype=bool)
        conf = tracked.confidence if tracked.confidence is not None else np.zeros(len(tracked))
        for j, (pid, aid, c) in enumerate(zip(tracked.tracker_id, linked, conf, strict=True)):
            if pid != UNCONFIRMED:
                memory = self._memory.setdefault(int(pid), PartMemory())
                memory.confidence = float(c)
                if aid != UNCONFIRMED:
                    memory.anchor_track_id = int(aid)
                    memory.seen_t, memory.seen_box = t, smoothed[j]
                    memory.seen_anchor_box = anchor_boxes[index[j]]

    def predicted_parts(self, frame: Frame, anchors: sv.Detections, part_name: str) -> sv.Detections:
        """Parts for a frame Grounding DINO skips: the live part tracks whose anchor track is in this frame, at their
        last seen box carried along by the anchor's motion (``anchor_index`` points at that anchor)."""
        self._check_part_time(frame.pts)
        boxes = self.parts.predict(frame.pts)
        pids = self.parts.live_ids(frame.pts)
        anchor_ids = [] if anchors.tracker_id is None else anchors.tracker_id.tolist()
        rows, index, carried = [], [], []
        for row, pid in enumerate(pids.tolist()):
            memory = self._memory.get(pid, PartMemory())
            if memory.anchor_track_id != UNCONFIRMED and memory.anchor_track_id in anchor_ids:
                rows.append(row)
                index.append(anchor_ids.index(memory.anchor_track_id))
                box = carried_box(memory, anchors)
                carried.append(boxes[row] if box is None else box)
        n = len(rows)
        chosen = pids[rows].astype(int)
        xyxy = np.array(carried, dtype=np.float32).reshape(n, 4)
        return sv.Detections(
            xyxy=xyxy,
            confidence=np.array([self._memory[int(p)].confidence for p in chosen], dtype=np.float32),
            class_id=np.zeros(n, dtype=np.int64),
            tracker_id=chosen,
            data={
                ANCHOR_INDEX_KEY: np.array(index, dtype=np.int64),
                CLASS_NAME_DATA_FIELD: np.array([part_name] * n, dtype=str),
                "phrase": np.array([""] * n, dtype=str),
                ANCHOR_TRACK_KEY: np.array([anchor_ids[i] for i in index], dtype=int),
                PREDICTED_KEY: np.ones(n, dtype=bool),
                SMOOTHED_KEY: xyxy.copy(),
            },
        )

    def _forget_dead(self) -> None:
        alive = self.parts.active_ids()
        for pid in [p for p in self._memory if p not in alive]:
            del self._memory[pid]

    # ------------------------------------------------------------------------------------------------ masks

    def score_masks(self, parts: sv.Detections) -> np.ndarray:
        """Consistency of every part mask with its track's reference, NaN when the track has none or the part is
        untracked; changes nothing (``check_masks`` is the step that counts flags)."""
        n = len(parts)
        scores = np.full(n, np.nan, dtype=np.float64)
        if parts.mask is None or parts.tracker_id is None:
            return scores
        boxes = np.asarray(parts.data.get(SMOOTHED_KEY, parts.xyxy), dtype=np.float64).reshape(n, 4)
        for j, pid in enumerate(parts.tracker_id):
            memory = self._memory.get(int(pid)) if pid != UNCONFIRMED else None
            if memory is not None and memory.mask is not None and memory.box is not None:
                scores[j] = consistency_score(memory.mask, memory.box, parts.mask[j], boxes[j])
        return scores

    def check_masks(self, parts: sv.Detections) -> np.ndarray:
        """Score every part mask against its track's reference (``data["consistency"]``, see ``score_masks``);
        return which rows are flagged inconsistent.

        The reference is the track's last *accepted* mask (``adopt_references``), never an unjudged one: a track's
        first masks are judged without a reference, and bad masks in a row never become one. After
        ``DROP_REFERENCE_AFTER`` flagged masks in a row the reference (and the verdict judged with it) is dropped:
        the part really changed, and its next mask is judged afresh like a new track's.
        """
        scores = self.score_masks(parts)
        parts.data[CONSISTENCY_KEY] = scores
        with np.errstate(invalid="ignore"):
            flagged = scores < self.cfg.consistency_threshold
        for j in np.flatnonzero(np.isfinite(scores)).tolist():
            memory = self._memory[int(parts.tracker_id[j])]  # type: ignore[index]
            if not flagged[j]:
                memory.flagged_in_a_row = 0
                continue
            memory.flagged_in_a_row += 1
            if memory.flagged_in_a_row >= DROP_REFERENCE_AFTER:
                memory.mask = memory.box = memory.verdict = None
                memory.flagged_in_a_row = 0
        return flagged

    def adopt_references(
        self, parts: sv.Detections, rows: Sequence[int] | np.ndarray, image: np.ndarray | None = None
    ) -> None:
        """Make the masks of ``rows`` their tracks' references (and, with the frame's ``image``, what the parts
        looked like: ``appearance``): call it for accepted masks only."""
        if parts.mask is None or parts.tracker_id is None:
            return
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=int)
        boxes = np.asarray(parts.data.get(SMOOTHED_KEY, parts.xyxy), dtype=np.float64).reshape(len(parts), 4)
        for j in rows.tolist():
            pid = int(parts.tracker_id[j])
            if pid != UNCONFIRMED:
                memory = self._memory.setdefault(pid, PartMemory())
                memory.mask, memory.box, memory.flagged_in_a_row = parts.mask[j], boxes[j], 0
                memory.patch = None if image is None else appearance_patch(image, parts.xyxy[j])

    # --------------------------------------------------------------------------------------------- verdicts

    def appearance(self, pid: int, image: np.ndarray, xyxy: np.ndarray) -> float:
        """How much the part in ``xyxy`` of ``image`` looks like it did in its track's reference frame
        (``patch_similarity``, -1..1); NaN when the track has no reference patch."""
        memory = self._memory.get(int(pid))
        if pid == UNCONFIRMED or memory is None or memory.patch is None:
            return float("nan")
        return patch_similarity(memory.patch, appearance_patch(image, xyxy))

    def reusable(
        self, pid: int, t: float, score: float, anchor_track_id: int, appearance: float = float("nan")
    ) -> Verdict | None:
        """The track's accepted verdict marked ``reused``, or None when it may not be reused.

        It may be reused when ``revalidate_s`` is on, the mask is consistent with the track's last accepted mask
        (``score`` at or above the threshold), the part is linked to the anchor track it was judged with, the
        verdict is at most ``revalidate_s`` old and it was reused fewer than ``max_reuses`` times (a granted reuse
        counts at once); when the track has a reference patch, the part must also still look like it
        (``appearance`` at or above ``reuse_min_similarity``: an eye that closed keeps its mask, not its look). It
        answers the part- and anchor-scope checks only: the caller answers frame-scope checks
        for the frame.
        """
        if self.refusal(pid, t, score, anchor_track_id, appearance):
            return None
        memory = self._memory[int(pid)]
        memory.reuses += 1  # counted when granted: frames of one batch are planned before any is decided
        return dataclasses.replace(memory.verdict, reused=True, latency_s=0.0)

    def refusal(self, pid: int, t: float, score: float, anchor_track_id: int, appearance: float = float("nan")) -> str:
        """Why ``reusable`` would refuse the track's verdict (a ``Refusal``), "" when it would grant it; changes
        nothing."""
        memory = self._memory.get(int(pid)) if pid != UNCONFIRMED else None
        return refusal_of(memory, self.cfg, t, score, anchor_track_id, appearance)

    def add_identity(self, pid: int, t: float, probability: float | None) -> float:
        """Add a fresh verdict's probability that the part is the target to its track's evidence; return the
        evidence (log-odds, > 0: the target), 0 for an untracked part.

        What a candidate *is* does not change from frame to frame, so the track's verdicts on it add up (log-odds,
        each verdict bounded to [0.02, 0.98]); older ones fade with a half-life of ``identity_half_life_s`` so that
        a track id taken over by another object is not held to the old one's record.
        """
        if pid == UNCONFIRMED:
            return 0.0
        memory = self._memory.setdefault(int(pid), PartMemory())
        return add_identity(memory, t, probability, self.cfg.identity_half_life_s)

    def remember(self, pid: int, t: float, anchor_track_id: int, verdict: Verdict | None) -> None:
        """Record what a part's judgement means for reuse; ``verdict`` None forgets the track's verdict.

        Call it with the fresh verdict of an *accepted* part, or of a part confidently rejected as not the target
        (either may be reused from then on; a rejection only while the track's identity record is negative), and
        with None for a part judged afresh otherwise (the older verdict no longer stands); a reused verdict changes
        nothing.
        """
        if pid == UNCONFIRMED or (verdict is not None and verdict.reused):
            return
        memory = self._memory.setdefault(int(pid), PartMemory())
        if verdict is None:
            memory.verdict = None
        else:
            memory.verdict, memory.verdict_t, memory.reuses = verdict, t, 0
            memory.verdict_anchor_track_id = int(anchor_track_id)


def _with_motion_sides(parts: sv.Detections, anchor_boxes: np.ndarray, index: np.ndarray) -> sv.Detections:
    """``parts`` with the side (square root of the area) of each part's anchor as ``MOTION_SIDE_KEY``: a part's
    acceleration noise scales with the animal that carries it (``BoxKalman.motion_side``); unchanged without anchors."""
    if not len(anchor_boxes):
        return parts
    sides = np.sqrt(np.prod(anchor_boxes[:, 2:] - anchor_boxes[:, :2], axis=1).clip(1.0, None))
    parts = copy.copy(parts)  # not dataclasses.replace: Detections re-validates every field (per frame)
    parts.data = {**parts.data, MOTION_SIDE_KEY: sides[index]}
    return parts
