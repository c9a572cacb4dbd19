"""What a stored frame becomes when a decision about it changes (``DatasetStore.render_dataset_copy`` and
``drop_copies``): the copy it is laid out again from, its label rows with the decision applied, and the files that
its new layout no longer keeps. Nothing here writes: the store stages the result (``staging.Staging.replace``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.frames import LabelStatus, Rejection
from streamlabel.store.layout import Destination, plan_copies
from streamlabel.store.rows import decode_jpeg, part_states

COPY_COLUMNS = ("image", "label", "hold_image", "hold_label")  # the frame columns that name a copy's file


def unpainted_copy(root: Path, frame: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The path (relative to ``root``) of the frame's copy with its original pixels.

    The original a decision kept (store/originals.py); the hold copy beside a dataset copy; the frame's only
    copy when it has no dataset copy; the dataset copy itself while none of its parts is painted out. Raises
    FileNotFoundError when there is none on disk.
    """
    if frame.get("original"):
        rel = frame["original"]
    elif frame["hold_image"]:
        rel = frame["hold_image"]
    elif frame["split"] != Destination.DATASET or frame["background"]:
        rel = frame["image"]
    else:
        painted = plan_copies(part_states(rows)).ignore_rows
        rel = None if painted else frame["image"]
    if not rel or not (root / rel).is_file():
        where = f"{root / rel} is missing" if rel else "its dataset copy is painted and no other is kept"
        raise FileNotFoundError(f"frame {frame['frame_id']}: no unpainted copy ({where})")
    return rel


def read_unpainted(root: Path, frame_id: str, rel: str) -> tuple[bytes, np.ndarray]:
    """The bytes and pixels of the unpainted copy at ``rel``; FileNotFoundError when it is not a readable JPEG."""
    data = (root / rel).read_bytes()
    image = decode_jpeg(data)
    if image is None:
        raise FileNotFoundError(f"frame {frame_id}: {root / rel} is not a readable JPEG")
    return data, image


def apply_updates(rows: list[dict[str, Any]], label_updates: dict[int, dict[str, Any]] | None) -> None:
    """Apply the columns that change (``label_updates``: label row ``id`` -> columns) to the rows, in place."""
    for row in rows:
        row |= (label_updates or {}).get(row["id"], {})


def obsolete_files(frame: dict[str, Any], new: dict[str, Any], files: dict[str, bytes]) -> set[str]:
    """The files of ``frame`` (its copies and original) that its new layout ``new`` with ``files`` does not keep."""
    old = {frame[k] for k in (*COPY_COLUMNS, "original") if frame.get(k)}
    return old - set(files) - {new["original"]}


def dropped(frame: dict[str, Any], rows: list[dict[str, Any]], reason: str) -> tuple[dict[str, Any], set[str]]:
    """The frame without its copies that wait for a decision, and the files that go with them.

    Parts that wait (pending, review; every part when the frame has no dataset copy) become rejected as
    ``poor_label`` with ``reason`` as their verdict reason (the rows change in place), so they stay ignore regions
    of a dataset copy. The dataset copy, whose label file holds only accepted parts, is kept as it is.
    """
    in_dataset = frame["split"] == Destination.DATASET
    waiting = {LabelStatus.PENDING, LabelStatus.REVIEW} | (set() if in_dataset else {LabelStatus.ACCEPTED})
    for row in rows:
        if row["status"] in waiting:
            row |= {
                "status": str(LabelStatus.REJECTED),
                "rejection": str(Rejection.POOR_LABEL),
                "verdict_reason": reason,
            }
        row["hold_idx"] = -1
    new = dict(frame) | {"hold": None, "hold_image": None, "hold_label": None}
    if not in_dataset:
        new |= {"split": str(Destination.REJECTED), "image": None, "label": None}
    old = {frame[k] for k in COPY_COLUMNS if frame[k]}
    kept = {new[k] for k in ("image", "label") if new[k]}
    return new, old - kept
