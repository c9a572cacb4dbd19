"""Labeler: runs detect → track → ground → segment → check consistency → validate over batches of frames.

With ``tracking.enabled`` each stream gets an anchor tracker and a part tracker (``tracking.streams``): parts carry
``tracker_id`` and ``data["anchor_track_id"]``; Grounding DINO runs on every ``ground_every``-th frame of a stream and
SAM2 segments the Kalman-predicted part boxes in between; a mask inconsistent with its track's last accepted mask is
never accepted automatically (``data["flagged"]``); an accepted verdict may be reused within ``revalidate_s`` (rules in
``StreamTracks.reusable``); finished anchor tracks become track segments (``TrackSegment``) for clips:
``finished_segments()`` after each batch, ``end_stream()`` at the end.

Before validation the novelty gate and the daily budget (``judging.Sifter``) empty the parts of frames that are
near-copies of what their tracks last kept, or that the day's budget refuses: they are counted, not validated or
stored (``sift_counts``).

The checklist's scopes (``checks``): the detector also returns the classes named by the checks' ``detector_class``
(``person``: ``FrameResult.people``); a frame where it finds one rejects every part with ``reject_frame`` without a
VLM call; a frame-scope failure of any fresh verdict rejects every part of the frame. Every part gets
``data["status"]``, ``data["verdict"]``, ``data["flagged"]`` and ``data["rejection"]``.

With ``models.student`` a trained student (``streamlabel.student``) runs on every frame of the batch: its parts are
compared with the pipeline's (``disagreement``; parts only it finds become review items), and with ``gate`` on the
frames where it finds nothing skip grounding and segmentation.

The batch types (``Stages``, ``StageTimes``, ``Perceived``) live in ``streamlabel.batch`` and the plan of what to
validate in ``streamlabel.planning``; they are re-exported here.

Predicted frames do not feed the part tracker: keep ``ground_every`` sampled frames shorter than ``max_age_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.batch import Perceived, Stages, StageTimes
from streamlabel.checks import Checklist, detector_failure, people_of, split_detections
from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult, LabelStatus, Rejection, verdict_status
from streamlabel.judging import FrameDecision, GuardedValidator, Plan, Sifter, decide, write_decisions
from streamlabel.planning import plan_run
from streamlabel.stages.base import (
    Verdict,
    empty_detections,
)
from streamlabel.stages.gate import ValidatorGate
from streamlabel.stages.ground import one_per_part
from streamlabel.store.tracks_seen import Sighting
from streamlabel.tracking.segments import TrackSegment
from streamlabel.tracking.streams import ANCHOR_TRACK_KEY, StreamTracks
from streamlabel.tracking.tracker import UNCONFIRMED

log = logging.getLogger(__name__)

__all__ = ["Labeler", "Perceived", "StageTimes", "Stages"]


class Labeler:
    """Labels batches of frames; frames of one stream must arrive in order (several streams may share a batch)."""

    def __init__(self, cfg: Config, stages: Stages) -> None:
        self.cfg = cfg
        self.stages = stages
        self.times = StageTimes()
        self.part_name = cfg.target.part.class_name
        self.review_threshold = cfg.target.validation.review_threshold
        self.checklist = Checklist.from_config(cfg.target.validation)
        self.tracking = cfg.tracking.enabled
        self.guarded = GuardedValidator(stages.validator, self.review_threshold)
        self.sifter = Sifter(cfg)  # the novelty gate and the daily budget, used by judge (one thread)
        self._detector_id = str(getattr(stages.detector, "model_id", type(stages.detector).__name__))
        self._lock = threading.RLock()  # the tracks, shared by perceive (next batch) and judge (this one)
        self._streams: dict[str, StreamTracks] = {}

    @property
    def gate(self) -> ValidatorGate:
        """The validator's circuit breaker (settable, e.g. with a test clock)."""
        return self.guarded.gate

    @gate.setter
    def gate(self, gate: ValidatorGate) -> None:
        self.guarded.gate = gate

    @property
    def stage_errors(self) -> dict[str, int]:
        """Unexpected validator errors by exception type (each kind is logged once, with its traceback)."""
        return self.guarded.errors

    def sift_counts(self) -> dict[str, dict[str, int]]:
        """Per stream: parts the novelty gate kept and dropped, frames it dropped, frames the budget kept and
        refused (``Sifter.counts``)."""
        return {stream: self.sifter.counts(stream) for stream in self.sifter.streams()}

    def take_sightings(self) -> list[Sighting]:
        """Each part track the gate saw since the last call, frames seen and kept (``Sifter.take_sightings``;
        gathered once ``sifter.record_sightings`` is on: the runner writes them to ``store.tracks_seen``)."""
        return self.sifter.take_sightings()

    def label(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Run the stages over ``frames`` (any mix of streams) and return one result per frame, in order."""
        return self.judge(self.perceive(frames))

    def perceive(self, frames: Sequence[Frame]) -> Perceived:
        """Detect, track, ground and segment: everything up to the consistency check and validation.

        ``perceive`` of the next batch may run in another thread while ``judge`` of this one runs (the daemon
        overlaps them); the tracks they share are guarded by a lock, and batches must be judged in order.
        """
        out = Perceived(frames=list(frames))
        if not frames:
            return out
        images = [f.image for f in frames]
        found = self._timed(out, "detect", len(images), self.stages.detector.detect, images)
        anchors, others = [], []
        for detections in found:
            a, o = split_detections(detections, self.cfg.target.anchor)
            anchors.append(a)
            others.append(o)
        out.failures = [detector_failure(o, self.checklist, self._detector_id) for o in others]
        ground, student = self._track_anchors(out, anchors), self.stages.student
        finds = self._timed(out, "student", len(images), student.find, images) if student else None
        opened = student.opened(finds, len(images)) if student else [True] * len(images)
        parts = self._ground(out, images, anchors, ground, opened)
        n_parts = sum(len(p) for p in parts)
        parts = self._timed(out, "segment", n_parts, self.stages.segmenter.segment, images, parts)
        out.results = [
            FrameResult(f, a, p, people=people_of(o)) for f, a, p, o in zip(frames, anchors, parts, others, strict=True)
        ]
        out.student = student.compare(out.results, finds) if student else []
        return out

    def judge(self, perceived: Perceived) -> list[FrameResult]:
        """Check consistency, validate (or reuse verdicts) and set every part's status, verdict, flag and rejection;
        returns the batch's results, in order. A validator error never escapes: its candidates stay pending."""
        if perceived.results:
            self._judge(perceived)
            if self.stages.student is not None:
                self.stages.student.add_finds(perceived.results, perceived.student)
        return perceived.results

    def finished_segments(self) -> list[TrackSegment]:
        """Pop the segments of anchor tracks that ended (at least ``tracking.clip_min_s`` long), every stream."""
        out: list[TrackSegment] = []
        with self._lock:
            for tracks in self._streams.values():
                out += tracks.pop_finished()
        return out

    def end_stream(self, stream: str) -> list[TrackSegment]:
        """The stream ended: close and return its open segments (and any finished ones not yet popped).

        Its tracks are forgotten; if the stream comes back, its ids go on counting from where they were.
        """
        with self._lock:
            tracks = self._streams.get(stream)
            return [] if tracks is None else tracks.end()

    def on_inconsistent(self, status: LabelStatus) -> LabelStatus:
        """The status of a mask flagged inconsistent: never accepted; rejected when ``on_inconsistent`` says so."""
        if self.cfg.tracking.on_inconsistent == "reject":
            return LabelStatus.REJECTED
        return LabelStatus.REVIEW if status == LabelStatus.ACCEPTED else status

    def status_of(self, verdict: Verdict) -> LabelStatus:
        """Accepted, review or rejected, from a verdict and the review threshold."""
        return verdict_status(verdict, self.review_threshold)

    # ------------------------------------------------------------------------------------------- perceive

    def _stream(self, stream: str) -> StreamTracks:
        tracks = self._streams.get(stream)
        if tracks is None:
            tracks = self._streams[stream] = StreamTracks(stream, self.cfg.tracking)
        return tracks

    def _track_anchors(self, batch: Perceived, anchors: list[sv.Detections]) -> list[bool]:
        """Give the anchors track ids (in place); return which frames Grounding DINO should see."""
        ground = [True] * len(anchors)
        if self.tracking:
            start = time.perf_counter()
            with self._lock:
                for i, f in enumerate(batch.frames):
                    tracks = self._stream(f.stream)
                    ground[i] = tracks.begin(f)
                    anchors[i] = tracks.track_anchors(f, anchors[i])
            self._add(batch, "track", time.perf_counter() - start, len(anchors))
        return ground

    def _ground(
        self,
        batch: Perceived,
        images: list[np.ndarray],
        anchors: list[sv.Detections],
        ground: list[bool],
        opened: list[bool],
    ) -> list[sv.Detections]:
        """Parts per frame: grounded where ``ground`` says so, else predicted from the part tracks; none where the
        student gate closed the frame (``opened`` False)."""
        todo = [i for i, g in enumerate(ground) if g and opened[i]]
        grounded: Any = iter([])
        if todo:
            todo_images, todo_anchors = [images[i] for i in todo], [anchors[i] for i in todo]
            found = self._timed(batch, "ground", len(todo), self.stages.grounder.ground, todo_images, todo_anchors)
            grounded = iter([one_per_part(p, self.cfg.target.part.nms_iou) for p in found])
        if not self.tracking:
            return [next(grounded) if o else empty_detections() for o in opened]
        parts = []
        start = time.perf_counter()
        with self._lock:
            for i, f in enumerate(batch.frames):
                if not opened[i]:
                    parts.append(empty_detections())
                elif ground[i]:
                    parts.append(self._streams[f.stream].track_parts(f, anchors[i], next(grounded)))
                else:
                    parts.append(self._streams[f.stream].predicted_parts(f, anchors[i], self.part_name))
        self._add(batch, "track", time.perf_counter() - start, 0)
        return parts

    def _add(self, batch: Perceived, stage: str, seconds: float, items: int) -> None:
        self.times.add(stage, seconds, items)
        s0, n0 = batch.times.get(stage, (0.0, 0))
        batch.times[stage] = (s0 + seconds, n0 + items)

    def _timed(self, batch: Perceived, stage: str, items: int, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        self._add(batch, stage, time.perf_counter() - start, items)
        return out

    # ---------------------------------------------------------------------------------------------- judge

    def _judge(self, batch: Perceived) -> None:
        """Plan, validate, then flag and decide the frames in order (see ``judge``).

        The consistency check runs frame by frame after validation, so that a mask accepted in one frame is the
        reference of the stream's next frame even inside one batch; reuse is planned before validation, in runs of
        frames (``_judge_run``), so a verdict judged in one frame may be reused later in the same batch.
        """
        if not batch.failures:
            batch.failures = [None] * len(batch.results)
        for r, failure in zip(batch.results, batch.failures, strict=True):
            self.sifter.sift(r, failure is not None)
        batch.flagged, start = [], 0
        while start < len(batch.results):
            start = self._judge_run(batch, start)

    def _judge_run(self, batch: Perceived, start: int) -> int:
        """Plan, validate and decide the frames from ``start`` to where ``_plan`` ends the run; the next start."""
        with self._lock:
            plan, stop = self._plan(batch, start)
        got = self.guarded.answer(plan.candidates)
        if got.seconds:
            self._add(batch, "validate", got.seconds, len(plan.candidates))
        fresh = {o: (v, s) for o, v, s in zip(plan.owners, got.verdicts, got.statuses, strict=True)}
        for i in range(start, stop):
            r = batch.results[i]

            def answer(j: int, i: int = i) -> tuple[Verdict | None, LabelStatus]:
                if (i, j) in plan.reused:
                    return plan.reused[(i, j)], self.status_of(plan.reused[(i, j)])
                return fresh[(i, j)]

            fresh_rows = {j for (k, j) in fresh if k == i}
            flagged, failure = self._check_masks(batch, r), batch.failures[i]
            batch.flagged.append(flagged)
            decision = decide(len(r.parts), flagged, failure, answer, fresh_rows, self.checklist, self.on_inconsistent)
            if self.tracking and failure is None:
                self._weigh_identity(r, decision, {j: fresh[(i, j)][0] for j in fresh_rows})
            write_decisions(r.parts, decision, flagged, self.checklist)
            self.sifter.remember(r)
            if self.tracking and failure is None:
                self._remember(r, decision, {j: fresh[(i, j)][0] for j in fresh_rows}, flagged)
        return stop

    def _weigh_identity(self, r: FrameResult, decision: FrameDecision, fresh: dict[int, Verdict | None]) -> None:
        """Add each fresh verdict's word on what the part is to its track's record (``StreamTracks.add_identity``);
        an accepted part whose track's record says it is not the target goes to review."""
        if r.parts.tracker_id is None:
            return
        with self._lock:
            tracks = self._streams[r.frame.stream]
            links = r.parts.data.get(ANCHOR_TRACK_KEY, np.full(len(r.parts), UNCONFIRMED))
            for j, pid in enumerate(r.parts.tracker_id.tolist()):
                evidence = tracks.add_identity(int(pid), r.frame.pts, self.checklist.identity_probability(fresh.get(j)))
                doubtful = evidence < 0 or int(links[j]) == UNCONFIRMED
                if doubtful and decision.statuses[j] == LabelStatus.ACCEPTED:
                    decision.statuses[j] = LabelStatus.REVIEW

    def _check_masks(self, batch: Perceived, r: FrameResult) -> np.ndarray:
        """Score a frame's masks against their tracks' last accepted masks; which are flagged inconsistent."""
        if not self.tracking:
            return np.zeros(len(r.parts), dtype=bool)
        start = time.perf_counter()
        with self._lock:
            flagged = self._streams[r.frame.stream].check_masks(r.parts)
        self._add(batch, "consistency", time.perf_counter() - start, len(r.parts))
        return flagged

    def _plan(self, batch: Perceived, start: int = 0) -> tuple[Plan, int]:
        """The validator's candidates and the reused verdicts of the run of frames from ``start`` (``plan_run``)."""
        reuse = self.cfg.tracking.revalidate_s > 0
        return plan_run(batch, start, self._reusable, self.checklist, self.part_name, reuse)

    def _reusable(self, r: FrameResult) -> list[Verdict | None]:
        """Per part of a frame, its track's verdict when it may be reused (``StreamTracks.reusable``), else None."""
        parts = r.parts
        if not self.tracking or self.cfg.tracking.revalidate_s <= 0 or parts.tracker_id is None:
            return [None] * len(parts)
        tracks, image = self._streams[r.frame.stream], r.frame.image
        scores = tracks.score_masks(parts)
        links = parts.data.get(ANCHOR_TRACK_KEY, np.full(len(parts), UNCONFIRMED))
        return [
            tracks.reusable(int(pid), r.frame.pts, float(score), int(link), tracks.appearance(pid, image, xyxy))
            for pid, score, link, xyxy in zip(parts.tracker_id, scores, links, parts.xyxy, strict=True)
        ]

    def _remember(
        self, r: FrameResult, decision: FrameDecision, fresh: dict[int, Verdict | None], flagged: np.ndarray
    ) -> None:
        """Accepted masks become their tracks' references and their verdicts reusable, and so does a consistent mask
        whose own fresh verdict is accepted in a frame rejected for a frame-scope check (the part itself is fine), or
        confidently rejected as not the target (a nose stays a nose: ``StreamTracks.reusable`` reuses that only
        while the track's identity record agrees). Any other fresh verdict that would not be accepted (failed, or
        below the review threshold) withdraws the track's older one; a flagged mask neither becomes a reference nor
        withdraws a verdict."""
        if r.parts.tracker_id is None:
            return
        tracks = self._streams[r.frame.stream]
        links = r.parts.data.get(ANCHOR_TRACK_KEY, np.full(len(r.parts), UNCONFIRMED))
        with self._lock:
            for j, (v, status) in enumerate(zip(decision.verdicts, decision.statuses, strict=True)):
                pid, link, own = int(r.parts.tracker_id[j]), int(links[j]), fresh.get(j)
                own_accepted = own is not None and self.status_of(own) == LabelStatus.ACCEPTED
                if status == LabelStatus.ACCEPTED or (own_accepted and not flagged[j]):
                    tracks.adopt_references(r.parts, [j], r.frame.image)
                    tracks.remember(pid, r.frame.pts, link, own if own_accepted else v)
                elif self._not_target(own) and not flagged[j]:
                    tracks.adopt_references(r.parts, [j], r.frame.image)
                    tracks.remember(pid, r.frame.pts, link, own)
                elif own is not None and not own_accepted:
                    tracks.remember(pid, r.frame.pts, link, None)

    def _not_target(self, verdict: Verdict | None) -> bool:
        """A fresh verdict that rejects its part as not the target with at least ``review_threshold`` confidence."""
        if verdict is None or verdict.passed or verdict.reused or verdict.confidence < self.review_threshold:
            return False
        return self.checklist.rejection(verdict) == Rejection.NOT_TARGET
