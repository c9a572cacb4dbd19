"""Per-stream tracking state for the Labeler: anchor and part trackers, part→anchor links, previous masks,
reusable verdicts and open track segments.

Frames of one stream must come in order; a frame whose ``pts`` goes back in time (a reconnect that restarted the
clock) closes the stream's segments and forgets its tracks, but ids keep counting up: they stay unique per stream
for the life of the process.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import supervision as sv

from streamlabel.config.tracking import TrackingConfig
from streamlabel.frames import Frame
from streamlabel.stages.base import Verdict
from streamlabel.tracking.consistency import box_affine, consistency_score
from streamlabel.tracking.segments import SegmentBook, TrackSegment
from streamlabel.tracking.tracker import MOTION_SIDE_KEY, SMOOTHED_KEY, UNCONFIRMED, Tracker, TrackerConfig

log = logging.getLogger(__name__)

ANCHOR_TRACK_KEY = "anchor_track_id"
CONSISTENCY_KEY = "consistency"
PREDICTED_KEY = "predicted"
# A flagged mask does not replace its track's reference mask, so that one bad mask (SAM2 took the other eye) does not
# also flag the good mask after it; after this many flagged masks in a row the new mask becomes the reference (the
# part really changed).
KEEP_REFERENCE_FRAMES = 1


@dataclass
class _PartMemory:
    """What a part track carries from frame to frame."""

    anchor_track_id: int = UNCONFIRMED
    confidence: float = 0.0
    mask: np.ndarray | None = None
    box: np.ndarray | None = None
    verdict: Verdict | None = None
    verdict_t: float = 0.0
    flagged_in_a_row: int = 0
    seen_t: float = -np.inf  # when the track last matched a grounded part
    seen_box: np.ndarray | None = None  # its smoothed box then
    seen_anchor_box: np.ndarray | None = None  # its anchor's smoothed box then


class StreamTracks:
    """Tracking state of one stream; see the module doc. Feed it every frame of the stream in order."""

    def __init__(self, stream: str, cfg: TrackingConfig) -> None:
        self.stream = stream
        self.cfg = cfg
        tracker_cfg = TrackerConfig.from_config(cfg)
        self.anchors = Tracker(tracker_cfg)
        self.parts = Tracker(tracker_cfg)
        self.segments = SegmentBook(cfg.clip_min_s)
        self.finished: list[TrackSegment] = []
        self._memory: dict[int, _PartMemory] = {}
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
        names = tracked.data.get("class_name", np.array(["object"] * len(tracked)))
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

    def _carried(self, memory: _PartMemory, anchors: sv.Detections) -> np.ndarray | None:
        """The part's last seen box carried along by its anchor's motion since then; None when its anchor track is
        not in this frame."""
        if memory.seen_box is None or memory.seen_anchor_box is None or anchors.tracker_id is None:
            return None
        hit = np.flatnonzero(anchors.tracker_id == memory.anchor_track_id)
        if memory.anchor_track_id == UNCONFIRMED or len(hit) == 0:
            return None
        now = np.asarray(anchors.data.get(SMOOTHED_KEY, anchors.xyxy), dtype=np.float64)[hit[0]]
        m = box_affine(memory.seen_anchor_box, now)
        scale, shift = np.tile(np.diag(m[:, :2]), 2), np.tile(m[:, 2], 2)
        return memory.seen_box * scale + shift

    def track_parts(self, frame: Frame, anchors: sv.Detections, parts: sv.Detections) -> sv.Detections:
        """Give grounded parts track ids and link each part track to the track of its anchor.

        A part track that missed the stream's previous frame (a blink, an occlusion, frames Grounding DINO skipped)
        is matched at its last box carried along by its anchor's motion, not at its own coasting prediction: eyes
        move with the dog, and two eyes would otherwise swap ids when the dog moved while they were not seen.
        """
        previous_t = self._part_t
        self._check_part_time(frame.pts)
        index = np.asarray(parts.data.get("anchor_index", np.zeros(len(parts), dtype=int)), dtype=int)
        anchor_boxes = np.asarray(anchors.data.get(SMOOTHED_KEY, anchors.xyxy), dtype=np.float64).reshape(-1, 4)
        if len(anchor_boxes):
            sides = np.sqrt(np.prod(anchor_boxes[:, 2:] - anchor_boxes[:, :2], axis=1).clip(1.0, None))
            parts = copy.copy(parts)  # not dataclasses.replace: Detections re-validates every field (per frame)
            parts.data = {**parts.data, MOTION_SIDE_KEY: sides[index]}
        hints = {}
        if previous_t is not None:
            for pid, memory in self._memory.items():
                carried = self._carried(memory, anchors) if memory.seen_t < previous_t else None
                if carried is not None:
                    hints[pid] = carried
        tracked = self.parts.update(parts, frame.pts, hints=hints)
        tracked.data.pop(MOTION_SIDE_KEY, None)
        smoothed = np.asarray(tracked.data[SMOOTHED_KEY], dtype=np.float64).reshape(-1, 4)
        anchor_ids = np.asarray(anchors.tracker_id if anchors.tracker_id is not None else [], dtype=int)
        linked = anchor_ids[index] if len(anchor_ids) else np.full(len(tracked), UNCONFIRMED, dtype=int)
        tracked.data[ANCHOR_TRACK_KEY] = linked.astype(int)
        tracked.data[PREDICTED_KEY] = np.zeros(len(tracked), dtype=bool)
        conf = tracked.confidence if tracked.confidence is not None else np.zeros(len(tracked))
        for j, (pid, aid, c) in enumerate(zip(tracked.tracker_id, linked, conf, strict=True)):
            if pid != UNCONFIRMED:
                memory = self._memory.setdefault(int(pid), _PartMemory())
                memory.confidence = float(c)
                if aid != UNCONFIRMED:
                    memory.anchor_track_id = int(aid)
                    memory.seen_t, memory.seen_box = frame.pts, smoothed[j]
                    memory.seen_anchor_box = anchor_boxes[index[j]]
        self._forget_dead()
        return tracked

    def predicted_parts(self, frame: Frame, anchors: sv.Detections, part_name: str) -> sv.Detections:
        """Parts for a frame Grounding DINO skips: the live part tracks whose anchor track is in this frame, at their
        last seen box carried along by the anchor's motion (``anchor_index`` points at that anchor)."""
        self._check_part_time(frame.pts)
        boxes = self.parts.predict(frame.pts)
        pids = self.parts.live_ids(frame.pts)
        anchor_ids = [] if anchors.tracker_id is None else anchors.tracker_id.tolist()
        rows, index, carried = [], [], []
        for row, pid in enumerate(pids.tolist()):
            memory = self._memory.get(pid, _PartMemory())
            if memory.anchor_track_id != UNCONFIRMED and memory.anchor_track_id in anchor_ids:
                rows.append(row)
                index.append(anchor_ids.index(memory.anchor_track_id))
                box = self._carried(memory, anchors)
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
                "anchor_index": np.array(index, dtype=np.int64),
                "class_name": np.array([part_name] * n, dtype=str),
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

    def check_masks(self, parts: sv.Detections) -> np.ndarray:
        """Score every part mask against its track's previous mask (``data["consistency"]``, NaN for the first
        mask of a track or an untracked part); return which rows are flagged inconsistent.

        The previous mask is the track's reference: the last mask not flagged, or the last one when
        ``KEEP_REFERENCE_FRAMES`` masks in a row were flagged.
        """
        n = len(parts)
        scores = np.full(n, np.nan, dtype=np.float64)
        if parts.mask is None or parts.tracker_id is None:
            parts.data[CONSISTENCY_KEY] = scores
            return np.zeros(n, dtype=bool)
        boxes = np.asarray(parts.data.get(SMOOTHED_KEY, parts.xyxy), dtype=np.float64).reshape(n, 4)
        for j, pid in enumerate(parts.tracker_id):
            if pid == UNCONFIRMED:
                continue
            memory = self._memory.setdefault(int(pid), _PartMemory())
            if memory.mask is not None and memory.box is not None:
                scores[j] = consistency_score(memory.mask, memory.box, parts.mask[j], boxes[j])
            if scores[j] < self.cfg.consistency_threshold and memory.flagged_in_a_row < KEEP_REFERENCE_FRAMES:
                memory.flagged_in_a_row += 1
            else:
                memory.mask, memory.box, memory.flagged_in_a_row = parts.mask[j], boxes[j], 0
        parts.data[CONSISTENCY_KEY] = scores
        with np.errstate(invalid="ignore"):
            return scores < self.cfg.consistency_threshold

    # --------------------------------------------------------------------------------------------- verdicts

    def reusable(self, pid: int, t: float, score: float) -> Verdict | None:
        """The track's passing verdict marked ``reused``, when it is younger than ``revalidate_s`` and the mask
        is consistent (``score`` at or above the threshold); else None."""
        if self.cfg.revalidate_s <= 0 or pid == UNCONFIRMED or not np.isfinite(score):
            return None
        memory = self._memory.get(int(pid))
        if memory is None or memory.verdict is None or not memory.verdict.passed:
            return None
        if score < self.cfg.consistency_threshold or t - memory.verdict_t > self.cfg.revalidate_s:
            return None
        return dataclasses.replace(memory.verdict, reused=True, latency_s=0.0)

    def remember(self, pid: int, t: float, verdict: Verdict | None) -> None:
        """Keep a fresh (not reused) verdict of a part track for later frames; call it for consistent masks only."""
        if pid == UNCONFIRMED or verdict is None or verdict.reused:
            return
        memory = self._memory.setdefault(int(pid), _PartMemory())
        memory.verdict, memory.verdict_t = verdict, t
