"""``models.student``: a trained student (``streamlabel train``) run beside the pipeline (docs/student.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from streamlabel.config.base import _Model


class StudentConfig(_Model):
    """The student: a YOLO-seg model that finds the part in one pass, compared with the pipeline on every frame.

    ``models.student: <run id or path>`` is short for ``models.student: {model: <run id or path>}``.
    """

    model: str | None = Field(
        None,
        description="The student: a run id of this store (`streamlabel train`, `streamlabel evaluate` lists them: "
        "<store>/models/<run_id>/weights/best.pt), a path to a YOLO-seg .pt, or 'promoted': the store's promoted "
        "run, switched to a newly promoted one while running (docs/student.md). Unset: no student.",
    )
    min_confidence: float = Field(
        0.25,
        ge=0.01,
        le=1.0,
        description="Student finds below this confidence are ignored. Higher: fewer student-only review items "
        "and fewer gated-through frames (the gate skips more frames, and misses more parts).",
    )
    iou_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="A pipeline part whose mask overlaps the student's by less than this IoU disagrees with it "
        "(disagreement = 1 - IoU; a part the student misses scores 1). Higher: more parts get a disagreement and "
        "move to the top of the review queue.",
    )
    match_iou: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="A student find whose box overlaps no pipeline part by at least this IoU is a part the "
        "pipeline missed (a review item of its own, disagreement = the student's confidence). Higher: more "
        "student finds count as missed parts, some of them a loose second box of a part the pipeline has.",
    )
    gate: bool = Field(
        False,
        description="Frames where the student finds no part skip grounding and segmentation (they keep their "
        "anchors, and no part). Saves most of the pipeline's cost on frames without the part; costs the parts the "
        "student misses (measure it: docs/student.md).",
    )
    max_det: int = Field(
        10,
        ge=1,
        le=300,
        description="Most student finds kept per frame, best first. Each one is compared with "
        "every pipeline part of its frame.",
    )
    check_s: float = Field(
        60.0,
        ge=1.0,
        le=86400.0,
        description="With model 'promoted': seconds between looks for a newly promoted run (one read of the "
        "manifest's models table). Lower switches to a better student sooner.",
    )
    imgsz: int = Field(640, ge=32, description="Student inference size in pixels. Larger finds smaller parts, slower.")
    half: bool = Field(True, description="Half precision on CUDA (ignored on the CPU).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``student: <ref>`` means ``student: {model: <ref>}``; ``student: null`` means no student."""
        if value is None:
            return {}
        if isinstance(value, str):
            return {"model": value}
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.model)
