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


# Keys of ``sv.Detections.data`` shared by the stages, the Labeler and the store (one name each).
ANCHOR_INDEX_KEY = "anchor_index"  # part row -> row of its anchor in FrameResult.anchors
POLYGON_KEY = "polygon"  # part row -> (N, 2) float polygon in frame pixels
STATUS_KEY = "status"  # part row -> LabelStatus value
VERDICT_KEY = "verdict"  # part row -> Verdict or None
FLAGGED_KEY = "flagged"  # part row -> bool: the mask was inconsistent with its track (never accepted)
REJECTION_KEY = "rejection"  # part row -> Rejection value, or "" when the part is not rejected
DISAGREEMENT_KEY = "disagreement"  # part row -> float 0-1, how much the student disagrees (NaN: no student)
SOURCE_KEY = "source"  # part row -> who found it: "pipeline" (absent: pipeline) or STUDENT_SOURCE
STUDENT_SOURCE = "student"  # a part only the student found (streamlabel.student); its labels.verdict_source


class Rejection(StrEnum):
    """What a failed check means for the dataset (``target.validation.checks[].on_fail``)."""

    REJECT_FRAME = "reject_frame"  # the whole frame is unusable (a person in it): no part of it is stored
    NOT_TARGET = "not_target"  # the candidate is not the target: it stays as background in the dataset image
    POOR_LABEL = "poor_label"  # the target is there but the label is poor: painted out as an ignore region


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
    people: sv.Detections = field(default_factory=sv.Detections.empty)
    """The detector's person boxes in this frame (privacy blur, the detector-answered ``no_human`` check)."""

    def statuses(self) -> list[str]:
        return [str(s) for s in self.parts.data.get("status", [])]
