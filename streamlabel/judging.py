"""Judging a perceived batch: the validator call that never raises, and each part's decision.

Used by the ``Labeler`` (``pipeline.py``), which owns the tracks: it decides which parts the validator sees and which
reuse their track's verdict, then lets ``decide`` turn the answers into statuses and ``write_decisions`` store them on
the parts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.checks import Checklist, frame_rejected
from streamlabel.config import Config
from streamlabel.frames import (
    ANCHOR_INDEX_KEY,
    FLAGGED_KEY,
    REJECTION_KEY,
    STATUS_KEY,
    VERDICT_KEY,
    FrameResult,
    LabelStatus,
    verdict_status,
)
from streamlabel.stages.base import Candidate, ModelUnavailableError, Validator, ValidatorUnavailableError, Verdict
from streamlabel.stages.gate import ValidatorGate
from streamlabel.store.budget import DailyBudget, is_infrared
from streamlabel.store.tracks_seen import Sighting, Sightings
from streamlabel.tracking.novelty import NEW_TRACK_NOVELTY, NoveltyGate
from streamlabel.tracking.tracker import SMOOTHED_KEY, UNCONFIRMED

log = logging.getLogger(__name__)

Owner = tuple[int, int]
"""(frame row in the batch, part row in the frame)."""


@dataclass
class Plan:
    """Who judges each part of a batch: the validator (``candidates`` of ``owners``) or its track (``reused``)."""

    candidates: list[Candidate] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)
    reused: dict[Owner, Verdict] = field(default_factory=dict)


@dataclass
class Answers:
    """The validator's answers to a list of candidates: one verdict (None without an answer) and status each."""

    verdicts: list[Verdict | None]
    statuses: list[LabelStatus]
    seconds: float = 0.0
    """Time spent in the validator (0 when it was not asked)."""


@dataclass
class GuardedValidator:
    """The validator stage behind the circuit breaker (``gate``) and a catch-all: it never raises.

    Unreachable (``ValidatorUnavailableError``, ``ModelUnavailableError``): the candidates are pending and the gate
    pauses the validator. Any other exception (a backend bug, a CUDA error): the candidates are pending, the error
    is logged once per exception type with its traceback and counted in ``errors``.
    """

    validator: Validator | None
    review_threshold: float
    gate: ValidatorGate = field(default_factory=ValidatorGate)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def answer(self, candidates: Sequence[Candidate]) -> Answers:
        """Verdicts and statuses; pending without an answer (never passed, never dropped), review without a
        validator."""
        n = len(candidates)
        if self.validator is None or not candidates:
            return Answers([None] * n, [LabelStatus.REVIEW] * n)
        if self.gate.paused:
            self.gate.skipped += n
            return Answers([None] * n, [LabelStatus.PENDING] * n)
        start = time.perf_counter()
        try:
            got = list(self.validator.validate(candidates))
            if len(got) != n:
                raise ValueError(f"the validator returned {len(got)} verdicts for {n} candidates")
        except (ValidatorUnavailableError, ModelUnavailableError) as exc:
            pause = self.gate.failed()
            log.error(
                "validator unavailable, %d candidates kept pending; the next %.0f s of candidates go to "
                "pending without asking: %s",
                n,
                pause,
                exc,
            )
            return Answers([None] * n, [LabelStatus.PENDING] * n, time.perf_counter() - start)
        except Exception as exc:  # a backend bug or a model error must not end the labeler thread
            self._unexpected(exc, n)
            return Answers([None] * n, [LabelStatus.PENDING] * n, time.perf_counter() - start)
        self.gate.answered()
        statuses = [verdict_status(v, self.review_threshold) for v in got]
        return Answers(list(got), statuses, time.perf_counter() - start)

    def _unexpected(self, exc: Exception, n: int) -> None:
        kind = type(exc).__name__
        self.errors[kind] += 1
        if self.errors[kind] == 1:
            log.error(
                "validator failed with %s (%s): %d candidates kept pending, judged again later. Further %s errors are "
                "counted, not logged. Please report this with the traceback:",
                kind,
                exc,
                n,
                kind,
                exc_info=exc,
            )
        else:
            log.debug("validator failed again with %s, %d candidates pending: %s", kind, n, exc)


@dataclass
class FrameDecision:
    """What ``decide`` made of one frame's parts."""

    verdicts: list[Verdict | None]
    statuses: list[LabelStatus]


def decide(
    n: int,
    flagged: np.ndarray,
    failure: Verdict | None,
    answers: Callable[[int], tuple[Verdict | None, LabelStatus]],
    fresh_rows: set[int],
    checklist: Checklist,
    on_inconsistent: Callable[[LabelStatus], LabelStatus],
) -> FrameDecision:
    """The verdict and status of each of a frame's ``n`` parts.

    ``failure`` (the detector found a person) rejects every part; ``answers(j)`` gives part ``j``'s verdict and
    status (fresh or reused); a flagged mask gets ``on_inconsistent`` of its status; a frame-scope check failed by a
    fresh verdict (parts in ``fresh_rows``) rejects every part of the frame.
    """
    if failure is not None:
        return FrameDecision([failure] * n, [LabelStatus.REJECTED] * n)
    verdicts: list[Verdict | None] = []
    statuses: list[LabelStatus] = []
    for j in range(n):
        v, s = answers(j)
        verdicts.append(v)
        statuses.append(on_inconsistent(s) if flagged[j] else s)
    failed_check = checklist.frame_failure([verdicts[j] for j in sorted(fresh_rows)])
    if failed_check is not None:
        verdicts = [frame_rejected(v, failed_check) for v in verdicts]
        statuses = [LabelStatus.REJECTED] * n
    return FrameDecision(verdicts, statuses)


def write_decisions(parts: sv.Detections, decision: FrameDecision, flagged: np.ndarray, checklist: Checklist) -> None:
    """Set ``status``, ``verdict``, ``flagged`` and ``rejection`` on every row of ``parts``."""
    n = len(parts)
    rejection = [
        checklist.rejection(v) if s == LabelStatus.REJECTED else ""
        for v, s in zip(decision.verdicts, decision.statuses, strict=True)
    ]
    parts.data[STATUS_KEY] = _objects([str(s) for s in decision.statuses])
    parts.data[VERDICT_KEY] = _objects(decision.verdicts)
    parts.data[FLAGGED_KEY] = np.asarray(flagged, dtype=bool).reshape(n)
    parts.data[REJECTION_KEY] = _objects(rejection)


class Sifter:
    """The novelty gate (``tracking.novelty``) and the daily budget (``store.daily_budget``) of one Labeler.

    ``sift`` runs on each frame before its parts are planned for the validator: a frame goes on when at least one
    of its confirmed-track parts is kept by the gate, or when tracking is off (no track ids: nothing to compare
    with); and then with *all* its parts (the others become their tracks' references too), so a stored frame never
    leaves a visible part unlabeled and unpainted. A tentative part (a one-off false box, or an object the tracker
    has not confirmed yet) never sends a frame on by itself, not even when the frame has no other part: with the
    gate on, a part is first judged once its track is confirmed and has lasted ``min_track_frames``
    (``NoveltyGate``). Those first frames of a track are where short false tracks (a box on a cushion, an ear for
    a moment) reach the validator, and the dog's own track is often not confirmed yet (its parts go to review):
    with the near-copies gone they would weigh on the dataset's precision (docs/performance.md).
    A frame that goes on is offered to the budget with its largest part novelty. A frame whose parts all are
    near-copies, or that the budget refuses, loses its parts (``FrameResult.parts`` is emptied): nothing is
    validated and the store keeps nothing of it (a frame with an anchor is never a background). Counted per
    stream: ``gate.kept`` / ``gate.dropped`` (parts), ``frames_dropped`` (frames the gate dropped),
    ``budget.refused`` (frames). The gate's ``state`` of a part is whether a person is in the frame (the
    detector's check failed), so a person leaving sends the part on; ``status_state`` adds the status of the
    track's last judged part (off: docs/store.md says why).
    """

    def __init__(self, cfg: Config) -> None:
        self.gate = NoveltyGate(cfg.tracking.novelty)
        self.budget = DailyBudget.from_config(cfg.store)
        self.infrared_max_saturation = cfg.store.infrared_max_saturation
        self.frames_dropped: Counter[str] = Counter()
        # The track's last status as gate state: off, since a status is only refreshed on kept frames and the
        # validator's noise then forces a keep after about one kept frame in four (measured: bench static).
        self.status_state = False
        self._status: dict[tuple[str, int], str] = {}  # last judged status per (stream, part track)
        # Per part track: frames seen and kept, taken by the runner after each batch (store.tracks_seen); off
        # unless someone takes them, so a Labeler without a store does not gather them.
        self.record_sightings = False
        self.sightings = Sightings()
        self._lock = threading.Lock()  # the counts are read by the metrics and status threads

    def sift(self, r: FrameResult, person: bool) -> None:
        """Keep ``r``'s parts, or empty them when the gate or the budget drops the frame (see the class doc)."""
        tracks = r.parts.tracker_id  # before the gate may empty the parts
        with self._lock:
            self._sift(r, person)
            if self.record_sightings and tracks is not None:
                self.sightings.add(r.frame.stream, r.frame.time, tracks.tolist(), kept=len(r.parts) > 0)

    def take_sightings(self) -> list[Sighting]:
        """The part tracks sifted since the last call, with frames seen and kept (``record_sightings`` on)."""
        with self._lock:
            return self.sightings.take()

    def _sift(self, r: FrameResult, person: bool) -> None:
        parts, f = r.parts, r.frame
        if not len(parts):
            return
        ids = parts.tracker_id if parts.tracker_id is not None else np.full(len(parts), UNCONFIRMED)
        # The tracker's smoothed boxes: a detector's jitter on a still dog is not a change.
        anchor_boxes = np.asarray(r.anchors.data.get(SMOOTHED_KEY, r.anchors.xyxy), dtype=np.float64).reshape(-1, 4)
        part_boxes = np.asarray(parts.data.get(SMOOTHED_KEY, parts.xyxy), dtype=np.float64).reshape(-1, 4)
        anchors = parts.data.get(ANCHOR_INDEX_KEY, np.zeros(len(parts), dtype=int))
        args = [
            (f.stream, int(pid), f.pts, f.image, anchor_boxes[int(a)], box, self._state(f.stream, int(pid), person))
            for pid, a, box in zip(ids, anchors, part_boxes, strict=True)
        ]
        tracked = [a for a in args if a[1] != UNCONFIRMED]
        decisions = [self.gate.decide(*a) for a in tracked]
        # Tracking on and no part on a confirmed track: one-off boxes and the first frame of new tracks, nothing the
        # gate could compare; they go on only with the gate off (class doc).
        tentative_only = not tracked and parts.tracker_id is not None and self.gate.cfg.enabled
        if tentative_only or (tracked and not any(d.keep for d in decisions)):
            self.frames_dropped[f.stream] += 1
            r.parts = parts[np.zeros(len(parts), dtype=bool)]
            return
        for a, d in zip(tracked, decisions, strict=True):
            if not d.keep:
                self.gate.adopt(*a)
        night = is_infrared(f.image, self.infrared_max_saturation)
        novelty = max((d.novelty for d in decisions), default=NEW_TRACK_NOVELTY)
        if not self.budget.offer(f.stream, f.time, novelty, night):
            r.parts = parts[np.zeros(len(parts), dtype=bool)]

    def remember(self, r: FrameResult) -> None:
        """Record each tracked part's status (after ``write_decisions``) as its track's state for the gate (only with
        ``status_state``; the record then grows by one entry per part track)."""
        if r.parts.tracker_id is None or not self.status_state:
            return
        for pid, status in zip(r.parts.tracker_id.tolist(), r.statuses(), strict=True):
            if pid >= 0:
                self._status[(r.frame.stream, int(pid))] = status

    def _state(self, stream: str, pid: int, person: bool) -> tuple[Hashable, ...]:
        return (person,) + ((self._status.get((stream, pid), ""),) if self.status_state else ())

    def counts(self, stream: str) -> dict[str, int]:
        """Per stream: parts the gate kept and dropped, frames it dropped, frames the budget kept and refused."""
        with self._lock:
            gate, budget, frames_dropped = (
                self.gate.counts(stream),
                self.budget.counts(stream),
                self.frames_dropped[stream],
            )
        return {
            "gate_kept": gate["kept"],
            "gate_dropped": gate["dropped"],
            "gate_frames_dropped": frames_dropped,
            "budget_kept": budget["kept"],
            "budget_refused": budget["refused"],
        }

    def streams(self) -> list[str]:
        """Streams the gate or the budget saw."""
        with self._lock:
            return sorted({*self.gate.kept, *self.gate.dropped, *self.budget.kept, *self.budget.refused})


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out
