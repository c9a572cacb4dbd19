"""The files of a stored frame's copies: which label rows each copy holds, and the bytes of its image and label.

``lay_out`` turns a plan (``layout.plan_copies``) into the frame's copy columns (split, image, label, subset,
hold...), the rows' ``idx``/``hold_idx`` and the files to write (path relative to the store -> bytes). The dataset
copy has its ignore regions painted out (``painted``); copies outside the dataset keep the frame as captured, with
people pixelated under ``privacy.people: blur`` (``held_bytes``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from streamlabel.config.privacy import PrivacyConfig
from streamlabel.frames import FrameResult
from streamlabel.privacy import apply_privacy
from streamlabel.store.layout import Copies, Destination, copy_relpaths, paint_ignore_regions
from streamlabel.store.rows import encode_jpeg, label_text, pixel_polygon


@dataclass(frozen=True)
class CopySettings:
    """The store settings that shape a frame's files (``store.jpeg_quality``, ``keep_rejected``,
    ``ignore_margin_px``); read from the store at each write, so a changed setting applies to the next frame."""

    jpeg_quality: int
    keep_rejected: bool
    ignore_margin_px: int


def frame_day(frame: dict[str, Any]) -> str:
    """The ``YYYY-MM-DD`` of a frame row's capture time: the day folder of its copies."""
    return datetime.fromisoformat(frame["time"]).strftime("%Y-%m-%d")


def held_bytes(result: FrameResult, unpainted: bytes, privacy: PrivacyConfig, jpeg_quality: int) -> bytes:
    """The bytes of the copies kept outside the dataset (review, pending, rejected): people pixelated with
    ``privacy.people: blur`` (docs/privacy.md); ``unpainted``, the frame as captured, otherwise."""
    if privacy.people != "blur" or not len(result.people):
        return unpainted
    blurred = apply_privacy(result.frame.image, result.people.xyxy, privacy)
    assert blurred is not None  # blur never drops
    return encode_jpeg(blurred, jpeg_quality, result.frame.frame_id)


def lay_out(
    frame: dict[str, Any],
    rows: list[dict[str, Any]],
    copies: Copies,
    image: np.ndarray,
    unpainted: bytes,
    held: bytes,
    subset: str,
    settings: CopySettings,
) -> dict[str, bytes]:
    """Fill the frame's copy columns and the rows' ``idx``/``hold_idx``; return the files (path -> bytes).

    ``unpainted`` is the frame as captured (the dataset copy where nothing is painted out), ``held`` the bytes of
    every copy outside the dataset. A rejected frame gets files only with ``keep_rejected``.
    """
    fid, stream, day = frame["frame_id"], frame["stream"], frame_day(frame)
    size = (frame["width"], frame["height"])
    split = copies.split
    number_rows(rows, copies)
    files: dict[str, bytes] = {}
    image_rel = label_rel = None
    if split != Destination.REJECTED or settings.keep_rejected:
        image_rel, label_rel = copy_relpaths(stream, day, fid, split, subset)
        if split == Destination.DATASET:
            files[image_rel] = _dataset_image(image, rows, copies, unpainted, fid, settings)
        else:
            files[image_rel] = held
        files[label_rel] = label_text([rows[j] for j in copies.primary_rows], *size)
    hold, hold_image, hold_label = copies.second_hold, None, None
    if hold is not None:
        hold_image, hold_label = copy_relpaths(stream, day, fid, hold)
        files[hold_image] = held
        files[hold_label] = label_text([rows[j] for j in copies.hold_rows], *size)
    frame |= {"split": str(split), "image": image_rel, "label": label_rel, "subset": str(subset)}
    frame |= {"hold": str(hold) if hold else None, "hold_image": hold_image, "hold_label": hold_label}
    return files


def number_rows(rows: list[dict[str, Any]], copies: Copies) -> None:
    """Set every row's line in the main copy's label file (``idx``) and in the hold copy's (``hold_idx``), -1 for
    a row that is not in that file."""
    for r in rows:
        r["idx"], r["hold_idx"] = -1, -1
    for k, j in enumerate(copies.primary_rows):
        rows[j]["idx"] = k
    if copies.second_hold is not None:
        for k, j in enumerate(copies.hold_rows):
            rows[j]["hold_idx"] = k


def _dataset_image(
    image: np.ndarray,
    rows: list[dict[str, Any]],
    copies: Copies,
    unpainted: bytes,
    frame_id: str,
    settings: CopySettings,
) -> bytes:
    """The dataset copy's bytes: ``unpainted`` when no part is painted out, else the painted pixels re-encoded."""
    pixels = painted(image, rows, copies, settings.ignore_margin_px)
    return unpainted if pixels is None else encode_jpeg(pixels, settings.jpeg_quality, frame_id)


def painted(image: np.ndarray, rows: list[dict[str, Any]], copies: Copies, margin_px: int) -> np.ndarray | None:
    """The dataset copy's pixels with the ignore regions painted out; None when there is nothing to paint."""
    if not copies.ignore_rows:
        return None
    h, w = image.shape[:2]
    boxes = np.array([json.loads(rows[j]["xyxy"]) for j in copies.ignore_rows], np.float64)
    keep = [pixel_polygon(rows[j], w, h) for j in copies.dataset_rows]
    return paint_ignore_regions(image, boxes, keep, margin_px)
