"""The student beside the pipeline: run on every frame of a batch, gate grounding, score disagreement, offer misses.

The Labeler calls, per batch: ``find`` (after detection), ``opened`` (which frames go on to grounding and
segmentation: all of them unless ``models.student.gate``), ``compare`` (once the parts are segmented: every part gets
``data["disagreement"]`` and ``data["source"]``) and, after judging, ``add_finds`` (the student's finds the pipeline
missed become review rows of their frames). ``find`` and ``compare`` run in the perceive thread, ``add_finds`` in the
judge thread; the counters are guarded by a lock.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import supervision as sv

from streamlabel.config import Config
from streamlabel.config.student import StudentConfig
from streamlabel.frames import DISAGREEMENT_KEY, SOURCE_KEY, FrameResult
from streamlabel.stages.base import Runtime
from streamlabel.student.compare import PIPELINE_SOURCE, anchor_of, score, student_rows

log = logging.getLogger(__name__)


class Finder(Protocol):
    def find(self, images: Sequence[np.ndarray]) -> list[sv.Detections] | None:
        """Per image, the student's parts; None when there is no student now (``models.student: promoted`` before a
        run is promoted)."""
        ...


@dataclass(frozen=True)
class MissedParts:
    """A frame's student finds that the pipeline missed, kept from ``compare`` until the frame is judged."""

    finds: sv.Detections
    scores: np.ndarray  # disagreement of each: the student's confidence
    anchor_index: np.ndarray  # the anchor holding each find
    parts_seen: int  # the frame's pipeline parts when compared (fewer after judging: the novelty gate dropped it)


class Student:
    """A loaded student and its settings; ``counts`` says what it did (frames, gated, missed parts offered)."""

    def __init__(self, finder: Finder, cfg: StudentConfig, part_name: str, model_id: str) -> None:
        self.finder, self.cfg, self.part_name, self.model_id = finder, cfg, part_name, model_id
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._failing = False

    def find(self, images: Sequence[np.ndarray]) -> list[sv.Detections] | None:
        """The student's parts per image, or None when it failed on this batch (logged once per outage, counted):
        the batch is then labeled as without a student."""
        try:
            found = self.finder.find(images)
        except Exception:  # a student failing mid-run must never stop labeling; the start-up probe caught the rest
            self._count(errors=1)
            if not self._failing:
                log.exception(
                    "student %s failed on a batch; labeling goes on without it until it answers", self.model_id
                )
            self._failing = True
            return None
        if found is None:
            return None
        if self._failing:
            log.info("student %s answers again", self.model_id)
        self._failing = False
        self._count(frames=len(images))
        return found

    def opened(self, finds: list[sv.Detections] | None, n: int) -> list[bool]:
        """Which of ``n`` frames go on to grounding and segmentation: with ``gate``, those where the student found
        a part (all of them when it failed); without, all."""
        if not self.cfg.gate or finds is None:
            return [True] * n
        out = [len(f) > 0 for f in finds]
        self._count(gated=out.count(False))
        return out

    def compare(self, results: Sequence[FrameResult], finds: list[sv.Detections] | None) -> list[MissedParts | None]:
        """Score every part of ``results`` against the student (``data["disagreement"]``, ``data["source"]``) and
        return per frame the finds the pipeline missed (None for every frame when the student failed)."""
        if finds is None:
            return [None] * len(results)
        out: list[MissedParts | None] = []
        for r, found in zip(results, finds, strict=True):
            shape = (r.frame.height, r.frame.width)
            d = score(r.parts, found, shape, self.cfg.iou_threshold, self.cfg.match_iou)
            r.parts.data[DISAGREEMENT_KEY] = d.part_scores.astype(np.float64)
            r.parts.data[SOURCE_KEY] = np.array([PIPELINE_SOURCE] * len(r.parts))
            missed = found[d.missed] if len(d.missed) else found[np.zeros(len(found), dtype=bool)]
            anchors = anchor_of(missed.xyxy, r.anchors.xyxy)
            inside = anchors >= 0
            self._count(disagreeing=int(np.count_nonzero(d.part_scores > 0)), outside_anchor=int((~inside).sum()))
            out.append(MissedParts(missed[inside], d.missed_scores[inside], anchors[inside], len(r.parts)))
        return out

    def add_finds(self, results: Sequence[FrameResult], missed: Sequence[MissedParts | None]) -> None:
        """Append each judged frame's missed parts to its parts as review rows (``source`` student). Not offered:
        frames the novelty gate or budget emptied, and frames with a person (the detector's ``people``)."""
        for r, m in zip(results, missed, strict=False):
            if m is None or not len(m.finds):
                continue
            if len(r.parts) < m.parts_seen or len(r.people):
                self._count(not_offered=len(m.finds))
                continue
            rows = student_rows(r.parts, m.finds, m.anchor_index, m.scores, self.part_name)
            r.parts = sv.Detections.merge([r.parts, rows]) if len(r.parts) else rows
            self._count(offered=len(rows))

    def _count(self, **amounts: int) -> None:
        with self._lock:
            self.counts.update(amounts)


def load_student(cfg: Config, runtime: Runtime, store_root: Path | None = None) -> Student | None:
    """The configured student, loaded and tried once; None when ``models.student`` is unset.

    Raises ``StudentUnavailableError`` (a ``ModelUnavailableError``) naming the file and the fix.
    """
    from streamlabel.student.follow import PROMOTED, PromotedFinder
    from streamlabel.student.model import build_finder

    scfg = cfg.models.student
    if not scfg.enabled:
        return None
    root = Path(store_root or cfg.store.path)
    part, tolerance_px = cfg.target.part.class_name, cfg.models.segment.polygon_tolerance_px
    if scfg.model == PROMOTED:
        finder: Any = PromotedFinder(scfg, root, part, runtime, tolerance_px)
    else:
        finder = build_finder(scfg, root, part, runtime, tolerance_px)
    return Student(finder, scfg, part, f"student:{scfg.model}")
