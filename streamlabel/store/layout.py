"""Where a frame's copies go: the per-part decision, ignore regions, the train/val split and background frames.

Pure functions (no files, no SQL) shared by ``DatasetStore.write``, ``DatasetStore.render_dataset_copy`` and the
pending retry, so a frame judged late lands exactly where it would have landed when judged at once.

A frame has up to two copies (docs/store.md, "Which frames go where"):

- the **dataset copy** (``images/<subset>/...``): when at least one part is accepted and no frame-level check
  failed. Its label file holds the accepted parts; every other candidate whose label is not accepted (review,
  pending, flagged, rejected as a poor label) is painted out as an *ignore region*; candidates rejected as
  ``not_target`` stay as background.
- the **hold copy** (``review/`` or ``pending/``), unpainted: while any part waits for a person or the validator.

A frame with neither is recorded as rejected (its files only with ``store.keep_rejected``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from streamlabel.frames import LabelStatus, Rejection


class Destination(StrEnum):
    """Where a copy of a frame lives (the manifest's ``frames.split`` and ``frames.hold``)."""

    DATASET = "dataset"
    REVIEW = "review"
    PENDING = "pending"
    REJECTED = "rejected"


class Subset(StrEnum):
    """The training split of a dataset copy."""

    TRAIN = "train"
    VAL = "val"


# Sub-folder of the store root per destination ("" is the dataset itself).
SPLIT_ROOTS = {"dataset": "", "review": "review", "rejected": "rejected", "pending": "pending"}


@dataclass(frozen=True)
class PartState:
    """What the layout needs to know of one part."""

    status: str
    flagged: bool = False
    rejection: str = ""


@dataclass(frozen=True)
class Copies:
    """The copies of one frame and which parts each label file holds (row indices into the frame's parts)."""

    dataset_rows: tuple[int, ...] = ()  # a line in the dataset label file (accepted)
    ignore_rows: tuple[int, ...] = ()  # painted out of the dataset copy
    hold: Destination | None = None  # the unpainted copy waiting for a decision
    hold_rows: tuple[int, ...] = ()
    rejected_rows: tuple[int, ...] = ()
    dataset: bool = False
    frame_rejected: bool = False  # a frame-level check failed: no dataset copy, no hold copy
    kept: bool = True  # False: no part, nothing to record

    @property
    def split(self) -> Destination:
        """The frame row's ``split``: the dataset when it has a dataset copy, else its hold, else rejected."""
        if self.dataset:
            return Destination.DATASET
        return self.hold or Destination.REJECTED

    @property
    def primary_rows(self) -> tuple[int, ...]:
        """The parts with a line in the file ``frames.label`` names."""
        if self.dataset:
            return self.dataset_rows
        return self.hold_rows if self.hold else self.rejected_rows

    @property
    def second_hold(self) -> Destination | None:
        """The hold copy kept beside a dataset copy (``frames.hold``), None when the hold is the frame's only copy."""
        return self.hold if self.dataset else None


_HOLD_LINES = {
    Destination.PENDING: {LabelStatus.ACCEPTED, LabelStatus.REVIEW, LabelStatus.PENDING},
    Destination.REVIEW: {LabelStatus.ACCEPTED, LabelStatus.REVIEW},
}


def plan_copies(parts: Sequence[PartState]) -> Copies:
    """The copies of a frame from its parts' states (the rule of docs/store.md)."""
    if not parts:
        return Copies(kept=False)
    # A flagged mask is never accepted: if one comes in accepted, it waits for a person like a review part.
    statuses = [LabelStatus.REVIEW if p.flagged and p.status == LabelStatus.ACCEPTED else p.status for p in parts]
    rejected_rows = tuple(j for j, s in enumerate(statuses) if s == LabelStatus.REJECTED)
    if any(p.rejection == Rejection.REJECT_FRAME for p in parts):
        return Copies(rejected_rows=rejected_rows, frame_rejected=True)
    accepted = tuple(j for j, p in enumerate(parts) if p.status == LabelStatus.ACCEPTED and not p.flagged)
    hold = None
    if LabelStatus.PENDING in statuses:
        hold = Destination.PENDING
    elif LabelStatus.REVIEW in statuses:
        hold = Destination.REVIEW
    hold_rows = tuple(j for j, s in enumerate(statuses) if hold and s in _HOLD_LINES[hold])
    ignore = tuple(j for j, p in enumerate(parts) if j not in accepted and is_ignore_region(p))
    return Copies(
        dataset_rows=accepted,
        ignore_rows=ignore if accepted else (),
        hold=hold,
        hold_rows=hold_rows,
        rejected_rows=rejected_rows,
        dataset=bool(accepted),
    )


def is_ignore_region(part: PartState) -> bool:
    """Whether a candidate that is not an accepted label is painted out of the dataset copy.

    Everything but a rejection as ``not_target`` is the target with a label not (yet) good enough: review,
    pending, flagged, ``poor_label``, and a rejection without a recorded kind (stores written before rejections
    were recorded; the cautious side: never teach a possible target as background).
    """
    if part.status == LabelStatus.ACCEPTED:
        return part.flagged
    if part.status == LabelStatus.REJECTED:
        return part.rejection != Rejection.NOT_TARGET
    return True


def paint_ignore_regions(
    image: np.ndarray, boxes_xyxy: np.ndarray, keep_polygons: Sequence[np.ndarray], margin_px: int
) -> np.ndarray:
    """A copy of ``image`` (H×W×3 uint8) with each box grown by ``margin_px`` filled with the image's mean colour.

    Pixels inside ``keep_polygons`` (the accepted parts, in pixels) are never painted, so an ignore region that
    overlaps an accepted label does not erase it.
    """
    out = image.copy()
    if len(boxes_xyxy) == 0:
        return out
    h, w = image.shape[:2]
    region = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, np.float64).reshape(-1, 4):
        c1, r1 = max(int(np.floor(x1)) - margin_px, 0), max(int(np.floor(y1)) - margin_px, 0)
        c2, r2 = min(int(np.ceil(x2)) + margin_px, w), min(int(np.ceil(y2)) + margin_px, h)
        region[r1:r2, c1:c2] = 1
    for poly in keep_polygons:
        if len(poly) >= 3:
            cv2.fillPoly(region, [np.round(np.asarray(poly)).astype(np.int32)], 0)
    mean = np.round(cv2.mean(image)[: image.shape[-1]]).astype(np.uint8)  # 40x faster than ndarray.mean here
    out[region.astype(bool)] = mean
    return out


def subset_of(stream: str, day: str, val_fraction: float) -> Subset:
    """Train or val for every frame of one camera-day: a SHA-256 of ``<stream>/<day>`` against ``val_fraction``.

    Deterministic across runs and machines (Python's ``hash`` is salted per process), so a camera-day, and every
    track segment inside it, never sits in both folders.
    """
    digest = hashlib.sha256(f"{stream}/{day}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return Subset.VAL if share < val_fraction else Subset.TRAIN


def copy_relpaths(stream: str, day: str, frame_id: str, dest: str, subset: str | None = None) -> tuple[str, str]:
    """Image and label paths of a copy, relative to the store root.

    The dataset: ``images/<subset>/<stream>/<day>/<id>.jpg`` and ``labels/<subset>/...`` (Ultralytics finds a
    label by replacing ``/images/`` with ``/labels/``); review, pending, rejected: ``<dest>/images/<stream>/...``.
    """
    rel = Path(stream) / day / frame_id
    if dest == Destination.DATASET:
        sub = Path(subset or Subset.TRAIN)
        return str("images" / sub / rel.with_suffix(".jpg")), str("labels" / sub / rel.with_suffix(".txt"))
    base = Path(SPLIT_ROOTS[dest])
    return str(base / "images" / rel.with_suffix(".jpg")), str(base / "labels" / rel.with_suffix(".txt"))


class BackgroundSampler:
    """Keeps ``fraction`` of each stream's empty frames (no anchor, no person) as negatives, evenly spaced.

    The k-th empty frame of a stream is kept when ``floor(k * fraction)`` steps up, so after n empty frames
    exactly ``floor(n * fraction)`` were kept (0.05: the 20th, 40th, ...). Counts restart with the process.
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.seen: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()

    def take(self, stream: str) -> bool:
        """Count one empty frame of ``stream``; True when it is to be stored."""
        before = self.seen[stream]
        self.seen[stream] = before + 1
        keep = int((before + 1) * self.fraction + 1e-9) > int(before * self.fraction + 1e-9)
        if keep:
            self.kept[stream] += 1
        return keep
