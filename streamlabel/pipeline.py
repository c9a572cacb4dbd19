"""Labeler: runs detect → track → ground → segment → check consistency → validate over batches of frames.

With ``tracking.enabled`` each stream gets an anchor tracker and a part tracker (``tracking.streams``): parts carry
``tracker_id`` and ``data["anchor_track_id"]``; Grounding DINO runs on every ``ground_every``-th frame of a stream and
SAM2 segments the Kalman-predicted part boxes in between; a mask inconsistent with its track's previous mask is never
accepted automatically; a passing verdict may be reused within ``revalidate_s``; finished anchor tracks become
track segments (``TrackSegment``) for clips: ``finished_segments()`` after each batch, ``end_stream()`` at the end.

Predicted frames do not feed the part tracker: a part track ends ``max_age_s`` after its last grounded frame, so keep
``ground_every`` sampled frames shorter than ``max_age_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult, LabelStatus
from streamlabel.stages.base import (
    Candidate,
    Detector,
    Grounder,
    ModelUnavailableError,
    Runtime,
    Segmenter,
    Validator,
    ValidatorUnavailableError,
    Verdict,
    backend_factory,
)
from streamlabel.stages.gate import ValidatorGate
from streamlabel.tracking.segments import TrackSegment
from streamlabel.tracking.streams import CONSISTENCY_KEY, StreamTracks

log = logging.getLogger(__name__)


@dataclass
class Stages:
    """The four built stages (validator None when validation is off)."""

    detector: Detector
    grounder: Grounder
    segmenter: Segmenter
    validator: Validator | None

    @classmethod
    def build(cls, cfg: Config, runtime: Runtime) -> Stages:
        """Build every stage from its config section through the backend registry."""
        m = cfg.models
        detector = backend_factory("detect", m.detect.kind)(m.detect, cfg.target, runtime)
        grounder = backend_factory("ground", m.ground.kind)(m.ground, cfg.target, runtime)
        segmenter = backend_factory("segment", m.segment.kind)(m.segment, cfg.target, runtime)
        validator = None
        if cfg.target.validation.enabled:
            validator = backend_factory("validate", m.validate_.kind)(m.validate_, cfg.target, runtime)
        return cls(detector, grounder, segmenter, validator)

    def model_ids(self) -> dict[str, str]:
        """Model id per stage, for provenance."""
        out = {}
        for stage, obj in (
            ("detect", self.detector),
            ("ground", self.grounder),
            ("segment", self.segmenter),
            ("validate", self.validator),
        ):
            if obj is not None:
                out[stage] = str(getattr(obj, "model_id", type(obj).__name__))
        return out


@dataclass
class StageTimes:
    """Seconds spent per stage and items processed, summed over batches."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    items: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, stage: str, seconds: float, items: int) -> None:
        self.seconds[stage] += seconds
        self.items[stage] += items


@dataclass
class Perceived:
    """A batch after ``Labeler.perceive``: results without statuses, the consistency flags, per-stage times."""

    frames: list[Frame]
    results: list[FrameResult] = field(default_factory=list)
    flagged: list[np.ndarray] = field(default_factory=list)
    times: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Stage -> (seconds, items) spent on this batch (``judge`` adds 'validate')."""


class Labeler:
    """Labels batches of frames; frames of one stream must arrive in order (several streams may share a batch)."""

    def __init__(self, cfg: Config, stages: Stages) -> None:
        self.cfg = cfg
        self.stages = stages
        self.times = StageTimes()
        self.part_name = cfg.target.part.class_name
        self.review_threshold = cfg.target.validation.review_threshold
        self.tracking = cfg.tracking.enabled
        self.gate = ValidatorGate()
        self._lock = threading.RLock()  # the tracks, shared by perceive (next batch) and judge (this one)
        self._streams: dict[str, StreamTracks] = {}

    def label(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Run the stages over ``frames`` (any mix of streams) and return one result per frame, in order."""
        return self.judge(self.perceive(frames))

    def perceive(self, frames: Sequence[Frame]) -> Perceived:
        """Detect, track, ground, segment and check consistency: everything up to validation.

        ``perceive`` of the next batch may run in another thread while ``judge`` of this one runs (the daemon
        overlaps them); the tracks they share are guarded by a lock, and batches must be judged in order.
        """
        out = Perceived(frames=list(frames))
        if not frames:
            return out
        images = [f.image for f in frames]
        anchors = self._timed(out, "detect", len(images), self.stages.detector.detect, images)
        ground = [True] * len(frames)
        if self.tracking:
            start = time.perf_counter()
            with self._lock:
                for i, f in enumerate(frames):
                    tracks = self._stream(f.stream)
                    ground[i] = tracks.begin(f)
                    anchors[i] = tracks.track_anchors(f, anchors[i])
            self._add(out, "track", time.perf_counter() - start, len(frames))
        todo = [i for i, g in enumerate(ground) if g]
        grounded = iter([])
        if todo:
            todo_images, todo_anchors = [images[i] for i in todo], [anchors[i] for i in todo]
            grounded = iter(
                self._timed(out, "ground", len(todo), self.stages.grounder.ground, todo_images, todo_anchors)
            )
        parts = []
        start = time.perf_counter()
        with self._lock:
            for i, f in enumerate(frames):
                if not self.tracking:
                    parts.append(next(grounded))
                elif ground[i]:
                    parts.append(self._streams[f.stream].track_parts(f, anchors[i], next(grounded)))
                else:
                    parts.append(self._streams[f.stream].predicted_parts(f, anchors[i], self.part_name))
        if self.tracking:
            self._add(out, "track", time.perf_counter() - start, 0)
        n_parts = sum(len(p) for p in parts)
        parts = self._timed(out, "segment", n_parts, self.stages.segmenter.segment, images, parts)
        out.results = [FrameResult(f, a, p) for f, a, p in zip(frames, anchors, parts, strict=True)]
        out.flagged = [np.zeros(len(r.parts), dtype=bool) for r in out.results]
        if self.tracking:
            start = time.perf_counter()
            with self._lock:
                out.flagged = [self._streams[r.frame.stream].check_masks(r.parts) for r in out.results]
            self._add(out, "consistency", time.perf_counter() - start, n_parts)
        return out

    def judge(self, perceived: Perceived) -> list[FrameResult]:
        """Validate (or reuse verdicts) and set every part's status; returns the batch's results, in order."""
        if perceived.results:
            self._judge(perceived)
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

    def _stream(self, stream: str) -> StreamTracks:
        tracks = self._streams.get(stream)
        if tracks is None:
            tracks = self._streams[stream] = StreamTracks(stream, self.cfg.tracking)
        return tracks

    def _add(self, batch: Perceived, stage: str, seconds: float, items: int) -> None:
        self.times.add(stage, seconds, items)
        s0, n0 = batch.times.get(stage, (0.0, 0))
        batch.times[stage] = (s0 + seconds, n0 + items)

    def _timed(self, batch: Perceived, stage: str, items: int, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        self._add(batch, stage, time.perf_counter() - start, items)
        return out

    def _judge(self, batch: Perceived) -> None:
        """Validate every part (or reuse its track's verdict) and set ``data['status']`` and ``data['verdict']``."""
        results, flagged = batch.results, batch.flagged
        candidates: list[Candidate] = []
        owners: list[tuple[int, int]] = []
        reused: dict[tuple[int, int], Verdict] = {}
        with self._lock:
            self._gather(results, candidates, owners, reused)
        verdicts: list[Verdict | None] = [None] * len(candidates)
        statuses = [LabelStatus.REVIEW] * len(candidates)
        if self.stages.validator is not None and candidates:
            # Never passed, never dropped: without an answer the candidates are stored as pending, judged later.
            if self.gate.paused:
                self.gate.skipped += len(candidates)
                statuses = [LabelStatus.PENDING] * len(candidates)
            else:
                try:
                    got = self._timed(batch, "validate", len(candidates), self.stages.validator.validate, candidates)
                    verdicts = list(got)
                    statuses = [self.status_of(v) for v in got]
                    self.gate.answered()
                except (ValidatorUnavailableError, ModelUnavailableError) as exc:
                    pause = self.gate.failed()
                    log.error(
                        "validator unavailable, %d candidates kept pending; the next %.0f s of candidates go to "
                        "pending without asking: %s",
                        len(candidates),
                        pause,
                        exc,
                    )
                    statuses = [LabelStatus.PENDING] * len(candidates)
        judged: dict[tuple[int, int], tuple[Verdict | None, LabelStatus]] = {
            owner: (v, s) for owner, v, s in zip(owners, verdicts, statuses, strict=True)
        }
        judged |= {owner: (v, self.status_of(v)) for owner, v in reused.items()}
        for i, r in enumerate(results):
            n = len(r.parts)
            status = np.empty(n, dtype=object)
            verdict = np.empty(n, dtype=object)
            for j in range(n):
                verdict[j], s = judged[(i, j)]
                status[j] = str(self.on_inconsistent(s) if flagged[i][j] else s)
                if self.tracking and r.parts.tracker_id is not None and not flagged[i][j]:
                    with self._lock:
                        self._streams[r.frame.stream].remember(int(r.parts.tracker_id[j]), r.frame.pts, verdict[j])
            r.parts.data["status"] = status
            r.parts.data["verdict"] = verdict

    def _gather(
        self,
        results: list[FrameResult],
        candidates: list[Candidate],
        owners: list[tuple[int, int]],
        reused: dict[tuple[int, int], Verdict],
    ) -> None:
        """Split the parts into candidates for the validator and parts whose track's verdict is reused."""
        for i, r in enumerate(results):
            names = r.anchors.data.get("class_name", np.array(["object"] * len(r.anchors)))
            scores = r.parts.data.get(CONSISTENCY_KEY)
            for j in range(len(r.parts)):
                if self.tracking and r.parts.tracker_id is not None and scores is not None:
                    tracks = self._streams[r.frame.stream]
                    kept = tracks.reusable(int(r.parts.tracker_id[j]), r.frame.pts, float(scores[j]))
                    if kept is not None:
                        reused[(i, j)] = kept
                        continue
                a = int(r.parts.data["anchor_index"][j])
                candidates.append(
                    Candidate(r.frame.image, r.parts[j], r.anchors.xyxy[a], str(names[a]), self.part_name)
                )
                owners.append((i, j))

    def on_inconsistent(self, status: LabelStatus) -> LabelStatus:
        """The status of a mask flagged inconsistent: never accepted; rejected when ``on_inconsistent`` says so."""
        if self.cfg.tracking.on_inconsistent == "reject":
            return LabelStatus.REJECTED
        return LabelStatus.REVIEW if status == LabelStatus.ACCEPTED else status

    def status_of(self, verdict: Verdict) -> LabelStatus:
        """Accepted, review or rejected, from a verdict and the review threshold."""
        if not verdict.passed:
            return LabelStatus.REJECTED
        if verdict.confidence < self.review_threshold:
            return LabelStatus.REVIEW
        return LabelStatus.ACCEPTED
