"""Judging a perceived batch: the validator call that never raises, and each part's decision.

Used by the ``Labeler`` (``pipeline.py``), which owns the tracks: it decides which parts the validator sees and which
reuse their track's verdict, then lets ``decide`` turn the answers into statuses and ``write_decisions`` store them on
the parts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.checks import Checklist, frame_rejected
from streamlabel.frames import FLAGGED_KEY, REJECTION_KEY, STATUS_KEY, VERDICT_KEY, LabelStatus, verdict_status
from streamlabel.stages.base import Candidate, ModelUnavailableError, Validator, ValidatorUnavailableError, Verdict
from streamlabel.stages.gate import ValidatorGate

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


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out
