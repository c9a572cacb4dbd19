"""``target``: the anchor class, the part prompt and the validation checklist."""

from __future__ import annotations

import re
from typing import Literal

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
    """One item of the validation checklist."""

    name: str = Field(description="Short identifier of the check, used in verdicts and events.")
    question: str = Field(description="What the vision-language model must confirm.")

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"must be lower_snake_case (got {value!r})")
        return value


DEFAULT_CHECKS: list[dict[str, str]] = [
    {"name": "anchor_visible", "question": "A {anchor} is clearly visible in the image."},
    {
        "name": "part_visible",
        "question": "The {anchor}'s {part} inside the red mask is clearly visible and not closed.",
    },
    {"name": "no_human", "question": "No human or any human body part appears anywhere in the image."},
    {
        "name": "mask_on_part",
        "question": "A red mask is present and lies on the {anchor}'s {part}, not on another object.",
    },
    {
        "name": "mask_quality",
        "question": "The red mask covers the {part} tightly: it does not spill far "
        "outside it and does not miss most of it.",
    },
]


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
