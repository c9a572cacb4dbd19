"""``privacy``: what happens to people in images written outside the dataset (docs/privacy.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamlabel.config.base import _Model


class PrivacyConfig(_Model):
    """People seen by the detector in review and pending copies, clips and thumbnails."""

    people: Literal["blur", "drop", "keep"] = Field(
        "blur",
        description="blur: pixelate every person box (plus margin_share) in images written outside the dataset; "
        "drop: write no such image of a frame with a person; keep: write them as captured.",
    )
    margin_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of a person box's width and height added on every side before blurring. Raising it "
        "also hides hair, hands and shadows that spill past the detector's box, and hides more of the scene.",
    )
    blocks: int = Field(
        8,
        ge=1,
        le=64,
        description="Pixel blocks along the longer side of a blurred box (each block is one mean colour). Raising "
        "it keeps more detail (a person may be recognisable from 16 on); 1 fills the box with one colour.",
    )
