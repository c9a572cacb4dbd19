"""Labeler: runs detect → ground → segment → validate over batches of frames, in stream order."""

from __future__ import annotations

import logging
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


class Labeler:
    """Labels batches of frames; frames of one stream must arrive in order."""

    def __init__(self, cfg: Config, stages: Stages) -> None:
        self.cfg = cfg
        self.stages = stages
        self.times = StageTimes()
        self.part_name = cfg.target.part.class_name
        self.review_threshold = cfg.target.validation.review_threshold

    def label(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Run the four stages over ``frames`` (any mix of streams) and return one result per frame, in order."""
        if not frames:
            return []
        images = [f.image for f in frames]
        anchors = self._timed("detect", len(images), self.stages.detector.detect, images)
        parts = self._timed("ground", len(images), self.stages.grounder.ground, images, anchors)
        n_parts = sum(len(p) for p in parts)
        parts = self._timed("segment", n_parts, self.stages.segmenter.segment, images, parts)
        results = [FrameResult(f, a, p) for f, a, p in zip(frames, anchors, parts, strict=True)]
        self._judge(results)
        return results

    def _timed(self, stage: str, items: int, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        self.times.add(stage, time.perf_counter() - start, items)
        return out

    def _judge(self, results: list[FrameResult]) -> None:
        """Validate every part and set ``data['status']`` and ``data['verdict']``."""
        candidates: list[Candidate] = []
        owners: list[tuple[int, int]] = []
        for i, r in enumerate(results):
            names = r.anchors.data.get("class_name", np.array(["object"] * len(r.anchors)))
            for j in range(len(r.parts)):
                a = int(r.parts.data["anchor_index"][j])
                candidates.append(
                    Candidate(r.frame.image, r.parts[j], r.anchors.xyxy[a], str(names[a]), self.part_name)
                )
                owners.append((i, j))
        verdicts: list[Verdict | None] = [None] * len(candidates)
        statuses = [LabelStatus.REVIEW] * len(candidates)
        if self.stages.validator is not None and candidates:
            try:
                got = self._timed("validate", len(candidates), self.stages.validator.validate, candidates)
                verdicts = list(got)
                statuses = [self.status_of(v) for v in got]
            except (ValidatorUnavailableError, ModelUnavailableError) as exc:
                # Never passed, never dropped: the candidates are stored as pending and judged later.
                log.error("validator unavailable, %d candidates kept pending: %s", len(candidates), exc)
                statuses = [LabelStatus.PENDING] * len(candidates)
        per_frame: dict[int, list[int]] = defaultdict(list)
        for k, (i, _) in enumerate(owners):
            per_frame[i].append(k)
        for i, r in enumerate(results):
            ks = per_frame.get(i, [])
            r.parts.data["status"] = np.array([str(statuses[k]) for k in ks], dtype=object)
            judged = np.empty(len(ks), dtype=object)
            judged[:] = [verdicts[k] for k in ks]
            r.parts.data["verdict"] = judged

    def status_of(self, verdict: Verdict) -> LabelStatus:
        """Accepted, review or rejected, from a verdict and the review threshold."""
        if not verdict.passed:
            return LabelStatus.REJECTED
        if verdict.confidence < self.review_threshold:
            return LabelStatus.REVIEW
        return LabelStatus.ACCEPTED
