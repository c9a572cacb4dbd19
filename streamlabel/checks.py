"""The validation checklist applied to a frame: what answers each check, and what a failure does to the frame.

A check's ``scope`` says what it is about. Part- and anchor-scope checks are judged per candidate by the
vision-language model, and a track's accepted verdict may answer them again in later frames (``tracking.
revalidate_s``). Frame-scope checks are answered for every frame and never reused: by the detector when the check
names a ``detector_class`` (a ``person`` box at or above ``detector_min_confidence`` fails ``no_human`` without a VLM
call), otherwise by at least one fresh VLM verdict of the frame. A frame-scope failure rejects every part of the
frame with ``reject_frame``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.config.target import AnchorConfig, CheckConfig, ValidationConfig, rejection_of
from streamlabel.frames import Rejection
from streamlabel.stages.base import Verdict

PERSON_CLASS = "person"
"""The detector class whose boxes become ``FrameResult.people`` (privacy blur)."""


@dataclass(frozen=True)
class Checklist:
    """The checklist sorted by what answers each check."""

    checks: tuple[CheckConfig, ...]

    @classmethod
    def from_config(cls, validation: ValidationConfig) -> Checklist:
        return cls(tuple(validation.checks))

    @property
    def detector_checks(self) -> tuple[CheckConfig, ...]:
        """Checks the detector answers too (``detector_class`` set)."""
        return tuple(c for c in self.checks if c.detector_class is not None)

    @property
    def frame_names(self) -> frozenset[str]:
        """Names of the frame-scope checks."""
        return frozenset(c.name for c in self.checks if c.scope == "frame")

    @property
    def frame_needs_vlm(self) -> bool:
        """True when some frame-scope check has no ``detector_class``: each frame needs one fresh VLM verdict."""
        return any(c.scope == "frame" and c.detector_class is None for c in self.checks)

    def detector_classes(self) -> list[str]:
        """The classes the detector must find besides the anchors, in checklist order, once each."""
        return list(dict.fromkeys(c.detector_class for c in self.detector_checks if c.detector_class))

    def rejection(self, verdict: Verdict | None) -> str:
        """The ``Rejection`` of a rejected part: the strongest ``on_fail`` of its failed checks; ``poor_label``
        when no check failed by name (an unreadable answer, a mask flagged inconsistent and rejected)."""
        failed = verdict.failed_checks() if verdict is not None else []
        return rejection_of(failed, self.checks) or str(Rejection.POOR_LABEL)

    @property
    def identity_names(self) -> tuple[str, ...]:
        """Checks that say what the candidate *is* (``on_fail: not_target``): the same for every frame of a track."""
        return tuple(c.name for c in self.checks if c.on_fail == "not_target")

    def identity_probability(self, verdict: Verdict | None) -> float | None:
        """How sure a fresh verdict is that the candidate is the target: the product of its identity checks'
        probabilities (``Verdict.check_probs``); from the verdict's own answer and confidence when it has none.
        None when the verdict says nothing about identity (no verdict, reused, a detector's, no identity check)."""
        names = self.identity_names
        if verdict is None or verdict.reused or verdict.confidence_source == "detector" or not names:
            return None
        if all(n in verdict.check_probs for n in names):
            return float(np.prod([verdict.check_probs[n] for n in names]))
        if not all(n in verdict.checks for n in names):
            return None  # an unreadable answer: no evidence either way
        confidence = min(max(verdict.confidence, 0.5), 1.0)
        return confidence if all(verdict.checks[n] for n in names) else 1.0 - confidence

    def frame_failure(self, verdicts: Sequence[Verdict | None]) -> str | None:
        """The first frame-scope check that a fresh verdict of the frame failed, or None."""
        names = self.frame_names
        for verdict in verdicts:
            if verdict is None or verdict.reused:
                continue
            for name in verdict.failed_checks():
                if name in names:
                    return name
        return None


def split_detections(found: sv.Detections, anchor: AnchorConfig) -> tuple[sv.Detections, sv.Detections]:
    """The detector's rows of one frame as (anchors, other classes): anchors are rows of ``anchor.classes`` at or
    above ``anchor.min_confidence``; every row of another class goes to the second (the checks' classes). Rows of
    a backend that names no classes (no ``data['class_name']``) are all anchors."""
    if len(found) == 0:
        return found, found
    confidence = found.confidence if found.confidence is not None else np.ones(len(found), dtype=np.float32)
    if CLASS_NAME_DATA_FIELD in found.data:
        is_anchor = np.isin(np.asarray(found.data[CLASS_NAME_DATA_FIELD], dtype=str), anchor.classes)
    else:
        is_anchor = np.ones(len(found), dtype=bool)
    return found[is_anchor & (confidence >= anchor.min_confidence)], found[~is_anchor]


def people_of(others: sv.Detections) -> sv.Detections:
    """The ``person`` rows among the detector's non-anchor rows of a frame."""
    if len(others) == 0:
        return others
    names = np.asarray(others.data.get(CLASS_NAME_DATA_FIELD, np.array([""] * len(others))), dtype=str)
    return others[names == PERSON_CLASS]


def detector_failure(others: sv.Detections, checklist: Checklist, model: str) -> Verdict | None:
    """The verdict of every part of a frame where the detector found a check's class at or above the check's
    ``detector_min_confidence`` (passed False, ``confidence_source`` 'detector'); None when no such check fails."""
    if len(others) == 0:
        return None
    names = np.asarray(others.data.get(CLASS_NAME_DATA_FIELD, np.array([""] * len(others))), dtype=str)
    confidence = others.confidence if others.confidence is not None else np.ones(len(others), dtype=np.float32)
    failed: dict[str, tuple[str, float]] = {}
    for check in checklist.detector_checks:
        hits = confidence[names == check.detector_class]
        if len(hits) and float(hits.max()) >= check.detector_min_confidence:
            failed[check.name] = (str(check.detector_class), float(hits.max()))
    if not failed:
        return None
    cls, best = max(failed.values(), key=lambda hit: hit[1])
    return Verdict(
        passed=False,
        confidence=best,
        checks=dict.fromkeys(failed, False),
        reason=f"detector found {cls} ({best:.2f})",
        model=model,
        confidence_source="detector",
    )


def frame_rejected(verdict: Verdict | None, check: str) -> Verdict:
    """A part's verdict once another part of its frame failed the frame-scope ``check``: not passed, with that check
    failed (so that ``rejection_of`` gives ``reject_frame``) and the part's own answers kept."""
    reason = f"frame check {check} failed on a part of this frame"
    if verdict is None:
        return Verdict(passed=False, confidence=0.0, checks={check: False}, reason=reason)
    return dataclasses.replace(verdict, passed=False, checks={**verdict.checks, check: False}, reason=reason)
