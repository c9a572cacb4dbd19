"""``target``: the anchor class, the part prompt and the validation checklist."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from streamlabel.config.base import _Model


class AnchorConfig(_Model):
    """The object that must be present (a COCO class of the detector)."""

    classes: list[str] = Field(
        default_factory=lambda: ["dog"],
        min_length=1,
        description="Detector class names that anchor a part, e.g. [dog] or [cat, dog].",
    )
    min_confidence: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Detector confidence an anchor needs. Lower finds more anchors and more false ones.",
    )


class PartConfig(_Model):
    """The part to label inside each anchor (found by Grounding DINO)."""

    prompt: str = Field(
        "eye",
        min_length=1,
        description="Generic text prompt for the part ('eye', never 'dog eye': compound prompts return the "
        "whole anchor). It is lowercased and ends with a period when sent.",
    )
    name: str | None = Field(None, description="Class name written to the dataset; the prompt when unset.")
    box_threshold: float = Field(
        0.3, ge=0, le=1, description="Grounding box score a part needs. Lower finds more parts, more wrong ones."
    )
    text_threshold: float = Field(
        0.25, ge=0, le=1, description="Score a prompt token needs to name a box. Lower accepts vaguer matches."
    )
    mode: Literal["crop", "full"] = Field(
        "crop",
        description="'crop' grounds on each anchor crop (small parts get resolution); 'full' grounds once on "
        "the whole frame (faster with many anchors, misses small parts).",
    )
    crop_margin: float = Field(
        0.15, ge=0, le=2, description="Margin added around an anchor box before cropping, as a fraction of it."
    )
    min_area_ratio: float = Field(
        0.0005, ge=0, le=1, description="Smallest part box area as a fraction of its anchor box area."
    )
    max_area_ratio: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Largest part box area as a fraction of its anchor box area. Raising it lets whole-anchor "
        "boxes through.",
    )
    max_per_anchor: int = Field(2, ge=1, description="Most parts kept per anchor, best first, after NMS.")
    nms_iou: float = Field(0.5, gt=0, le=1, description="IoU above which overlapping part boxes are merged.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip(" ."):
            raise ValueError("must name the part, e.g. 'eye'")
        return value

    @model_validator(mode="after")
    def _area_bounds(self) -> PartConfig:
        if self.min_area_ratio >= self.max_area_ratio:
            raise ValueError(
                f"min_area_ratio ({self.min_area_ratio}) must be below max_area_ratio ({self.max_area_ratio})"
            )
        return self

    @property
    def class_name(self) -> str:
        return self.name or self.prompt.strip(" .").lower()


class CheckConfig(_Model):
    """One item of the validation checklist.

    ``scope`` says what the check is about (the whole frame, the anchor, or the part) and ``on_fail`` what a
    failure means for the dataset: ``reject_frame`` keeps no part of the frame, ``not_target`` leaves the
    candidate as background, ``poor_label`` paints it out as an ignore region (the target is there, the label is
    not good enough to teach it). Frame-scope checks are judged for every frame, never reused from a track.
    """

    name: str = Field(description="Short identifier of the check, used in verdicts and events.")
    question: str = Field(description="What the vision-language model must confirm.")
    scope: Literal["frame", "anchor", "part"] = Field(
        "part", description="What the check is about: the whole frame, the anchor, or the part."
    )
    on_fail: Literal["reject_frame", "not_target", "poor_label"] = Field(
        "poor_label",
        description="What a failure means: 'reject_frame' (no part of the frame is stored), 'not_target' (the "
        "candidate stays as background), 'poor_label' (painted out of the dataset image as an ignore region).",
    )
    detector_class: str | None = Field(
        None,
        description="A detector class that answers this check too: the check fails when the detector finds it "
        "in the frame (e.g. 'person' for no_human), without asking the vision-language model.",
    )
    detector_min_confidence: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Detector confidence at which ``detector_class`` fails the check. Lower rejects more frames "
        "for shadows and posters; higher lets faint people through.",
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"must be lower_snake_case (got {value!r})")
        return value


DEFAULT_CHECKS: list[dict[str, Any]] = [
    {
        "name": "anchor_visible",
        "question": "A {anchor} is clearly visible in the image.",
        "scope": "anchor",
        "on_fail": "not_target",
    },
    {
        "name": "part_visible",
        "question": "The {anchor}'s {part} inside the red mask is clearly visible and not closed.",
        "scope": "part",
        "on_fail": "poor_label",
    },
    {
        "name": "no_human",
        "question": "No human or any human body part appears anywhere in the image.",
        "scope": "frame",
        "on_fail": "reject_frame",
        "detector_class": "person",
    },
    {
        "name": "mask_on_part",
        "question": "A red mask is present and lies on the {anchor}'s {part}, not on another object.",
        "scope": "part",
        "on_fail": "not_target",
    },
    {
        "name": "mask_quality",
        "question": "The red mask covers the {part} tightly: it does not spill far "
        "outside it and does not miss most of it.",
        "scope": "part",
        "on_fail": "poor_label",
    },
]


def rejection_of(failed: Sequence[str], checks: Sequence[CheckConfig]) -> str:
    """What a set of failed checks means for the dataset: the strongest ``on_fail`` among them.

    ``reject_frame`` beats ``not_target`` beats ``poor_label``; a failed name that is not in the checklist (a
    malformed answer has none) counts as ``poor_label``: the candidate is kept out of the dataset without being
    taught as background. Returns "" when nothing failed.
    """
    if not failed:
        return ""
    by_name = {c.name: c.on_fail for c in checks}
    kinds = {by_name.get(name, "poor_label") for name in failed}
    for kind in ("reject_frame", "not_target", "poor_label"):
        if kind in kinds:
            return kind
    return "poor_label"


class ValidationConfig(_Model):
    """The checklist a vision-language model judges for every mask. Every check must pass."""

    enabled: bool = Field(
        True, description="Judge every mask. Turning it off stores unjudged labels (confidence 0) in review."
    )
    review_threshold: float = Field(
        0.8,
        ge=0,
        le=1,
        description="A passing verdict below this confidence goes to review/ instead of the dataset. Higher "
        "keeps the dataset cleaner and sends more to a person.",
    )
    checks: list[CheckConfig] = Field(
        default_factory=lambda: [CheckConfig(**c) for c in DEFAULT_CHECKS],
        min_length=1,
        description="Checklist; '{anchor}' and '{part}' in a question are replaced by the target names.",
    )

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, checks: list[CheckConfig]) -> list[CheckConfig]:
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check names must be unique (repeated: {', '.join(dupes)})")
        return checks


class TargetConfig(_Model):
    """What to label: an anchor class and a part inside it."""

    anchor: AnchorConfig = Field(default_factory=AnchorConfig, description="The anchor object.")
    part: PartConfig = Field(default_factory=PartConfig, description="The part inside the anchor.")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="The VLM gate.")

    @model_validator(mode="after")
    def _detector_class_not_an_anchor(self) -> TargetConfig:
        for check in self.validation.checks:
            if check.detector_class is not None and check.detector_class in self.anchor.classes:
                raise ValueError(
                    f"validation.checks[{check.name}].detector_class {check.detector_class!r} is also an anchor class "
                    "(target.anchor.classes): every frame with an anchor would fail the check. Name another class "
                    "or remove detector_class."
                )
        return self
