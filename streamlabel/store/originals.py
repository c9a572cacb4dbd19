"""The unpainted original of a decided frame: what lets a person's decision be undone (``frames.original``).

A frame normally keeps its original pixels in one of its copies: the hold copy (review, pending), or the dataset
copy while none of its parts is painted out. A person's decision can take the last of them away: rejecting a part
of a frame whose parts were all accepted paints it out of the dataset copy, and rejecting every part of a frame
drops its copies. Before such a decision is rendered, the frame's unpainted pixels are kept as
``originals/<stream>/<day>/<frame_id>.jpg`` (the bytes of the copy the render starts from, so an undo lays the
frame out byte for byte as before). The original goes as soon as a render gives the frame an unpainted copy again
(an undo, an accept), and retention prunes it first (``store/retention.py``): an old decision can then no longer
be undone, which the page says.

Only decisions make an original (``render_dataset_copy(..., keep_original=True)``); the pending retry and a new
frame never do, so ``store.keep_rejected: false`` still keeps no image of what the pipeline rejected.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from streamlabel.store.layout import Copies, Destination

ORIGINALS_ROOT = "originals"


def original_relpath(stream: str, day: str, frame_id: str) -> str:
    """Where a frame's original lies, relative to the store root."""
    return str(Path(ORIGINALS_ROOT) / stream / day / f"{frame_id}.jpg")


def has_unpainted_copy(frame: dict[str, Any], copies: Copies) -> bool:
    """Whether the frame laid out as ``frame`` (its new copy columns) and ``copies`` keeps its pixels unpainted."""
    if frame.get("hold_image"):
        return True
    if not frame.get("image"):
        return False
    return copies.split != Destination.DATASET or bool(frame.get("background")) or not copies.ignore_rows


def plan_original(
    old: dict[str, Any], new: dict[str, Any], copies: Copies, source: bytes, keep: bool
) -> dict[str, bytes]:
    """Set ``new["original"]`` for a render of ``old`` into ``new``; returns the file to write with it, if any.

    The original is written (from ``source``, the unpainted bytes the render starts from) when the new layout
    keeps no unpainted copy and ``keep`` (a person's decision) asks for it, kept while it is still needed, and
    dropped (set to None: the caller deletes the file) once the new layout has an unpainted copy again.
    """
    current = old.get("original")
    if has_unpainted_copy(new, copies):
        new["original"] = None
        return {}
    if current:
        new["original"] = current
        return {}
    if not keep:
        new["original"] = None
        return {}
    day = datetime.fromisoformat(str(old["time"])).strftime("%Y-%m-%d")
    new["original"] = original_relpath(str(old["stream"]), day, str(old["frame_id"]))
    return {new["original"]: source}
