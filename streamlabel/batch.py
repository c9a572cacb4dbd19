"""The batch-level types of the Labeler: the built stages, their timings and a batch between perceive and judge."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult
from streamlabel.stages.base import Detector, Grounder, Runtime, Segmenter, Validator, Verdict, backend_factory
from streamlabel.student import MissedParts, Student, load_student


@dataclass
class Stages:
    """The four built stages (validator None when validation is off)."""

    detector: Detector
    grounder: Grounder
    segmenter: Segmenter
    validator: Validator | None
    student: Student | None = None  # models.student (streamlabel.student): compared with the parts, may gate

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
        return cls(detector, grounder, segmenter, validator, load_student(cfg, runtime))

    def model_ids(self) -> dict[str, str]:
        """Model id per stage, for provenance."""
        out = {}
        for stage, obj in (
            ("detect", self.detector),
            ("ground", self.grounder),
            ("segment", self.segmenter),
            ("validate", self.validator),
            ("student", self.student),
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
    """A batch after ``Labeler.perceive``: results without statuses, what the detector answered, per-stage times."""

    frames: list[Frame]
    results: list[FrameResult] = field(default_factory=list)
    flagged: list[np.ndarray] = field(default_factory=list)
    """Per frame, which parts are inconsistent with their track (filled by ``judge``, which owns the references)."""
    failures: list[Verdict | None] = field(default_factory=list)
    """Per frame, the detector's failing verdict (a person in the frame) or None."""
    times: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Stage -> (seconds, items) spent on this batch (``judge`` adds 'consistency' and 'validate')."""
    student: list[MissedParts | None] = field(default_factory=list)  # per frame, finds the pipeline missed
