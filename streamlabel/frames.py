"""Frame: the unit that flows from a stream reader through the pipeline to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import supervision as sv


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame of one stream.

    Attributes:
        stream: name of the stream (the key under ``streams:`` in the config).
        seq: index of this frame among the sampled frames of the stream, from 0.
        pts: seconds from the start of the stream (presentation time, or wall clock when there is none).
        time: UTC capture time; the wall clock when the stream has no usable timestamps.
        image: H×W×3 RGB uint8 array.
        keyframe: whether the decoder marked the frame as a keyframe.
    """

    stream: str
    seq: int
    pts: float
    time: datetime
    image: np.ndarray = field(repr=False)
    keyframe: bool = False

    @property
    def frame_id(self) -> str:
        """Stable id, unique per stream: capture time to the millisecond plus the sampled index."""
        return f"{self.stream}_{self.time:%Y%m%dT%H%M%S}{self.time.microsecond // 1000:03d}Z_{self.seq:06d}"

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class LabelStatus(StrEnum):
    """Where a labeled part ends up."""

    ACCEPTED = "accepted"  # every check passed with confidence >= review_threshold: into the dataset
    REVIEW = "review"  # passed below the threshold, or validation is off: a person decides
    REJECTED = "rejected"  # a check failed, or the model's answer could not be read
    PENDING = "pending"  # the validator was unreachable: kept and judged later, never dropped


def verdict_status(verdict: Any, review_threshold: float) -> LabelStatus:
    """Accepted, review or rejected from a verdict (anything with ``passed`` and ``confidence``) and the threshold."""
    if not verdict.passed:
        return LabelStatus.REJECTED
    if verdict.confidence < review_threshold:
        return LabelStatus.REVIEW
    return LabelStatus.ACCEPTED


@dataclass
class FrameResult:
    """What the pipeline found in one frame.

    ``parts`` carries ``mask``, ``data["polygon"]``, ``data["anchor_index"]``, ``data["status"]`` (LabelStatus
    values) and ``data["verdict"]`` (Verdict or None) per part; ``anchors`` are the detector's boxes.
    """

    frame: Frame
    anchors: sv.Detections
    parts: sv.Detections

    def statuses(self) -> list[str]:
        return [str(s) for s in self.parts.data.get("status", [])]
