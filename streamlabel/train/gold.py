"""The sets a student is measured on: the gold set of people's audits, or the val split when there is none.

**Gold set**: the audit frames (``store/audit.py``) whose every part a person decided. Truth is what people said:
the parts they accepted or fixed (with the fixed mask), nothing else; the parts they rejected are not the target
or not a good label, so a student that finds them is wrong. The same parts give the teacher's (the labeler's
automatic acceptance) precision and recall: a part the pipeline accepted is a positive, a part people accepted is
a true one. Audit frames are never trained on (``snapshot.take_snapshot``).

**Val split**: without a gold set, the accepted labels of the val frames are the truth: the labeler's own labels,
so it measures how well the student copies the teacher, not how right either is; there is no teacher figure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlabel.frames import LabelStatus
from streamlabel.store.audit import Audits
from streamlabel.store.manifest import Manifest
from streamlabel.store.rows import pixel_polygon
from streamlabel.store.trained_models import dataset_frames

log = logging.getLogger(__name__)

GOLD, VAL = "gold", "val"


@dataclass
class EvalFrame:
    """One frame to evaluate on: its image and its true parts (polygons in pixels)."""

    frame_id: str
    image: Path
    width: int
    height: int
    truth: list[Any] = field(default_factory=list)  # (K, 2) float arrays


@dataclass
class EvalSet:
    """The frames of a gold or val set, the decided parts (gold only), and frames left out with why."""

    kind: str  # gold | val
    frames: list[EvalFrame]
    parts: list[dict[str, Any]] = field(default_factory=list)  # Audits.outcomes()["audit"]
    skipped: int = 0  # frames without a readable image


def _has_tables(manifest: Manifest, *names: str) -> bool:
    rows = manifest.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return set(names) <= {r["name"] for r in rows}


def gold_set(manifest: Manifest, store_root: Path) -> EvalSet:
    """The done audit frames and their people-decided truth (empty when nobody audited yet)."""
    if not _has_tables(manifest, "audits", "reviews"):
        return EvalSet(GOLD, [])
    parts = Audits(manifest, Path(store_root), fraction=0.0).outcomes()["audit"]
    by_frame: dict[str, set[int]] = {}
    for p in parts:
        by_frame.setdefault(p["frame_id"], set())
        if p["truth"]:
            by_frame[p["frame_id"]].add(int(p["label_id"]))
    frames, skipped = [], 0
    for frame_id, true_ids in sorted(by_frame.items()):
        row = manifest.frame(frame_id)
        image = _image_of(row, Path(store_root))
        if row is None or image is None:
            skipped += 1
            continue
        w, h = int(row["width"]), int(row["height"])
        truth = [pixel_polygon(r, w, h) for r in manifest.labels_of(frame_id) if r["id"] in true_ids]
        frames.append(EvalFrame(frame_id, image, w, h, truth))
    if skipped:
        log.info("gold set: %d audit frame(s) without a readable image left out of the student's figures", skipped)
    return EvalSet(GOLD, frames, parts, skipped)


def _image_of(row: dict[str, Any] | None, root: Path) -> Path | None:
    """The frame's image: the dataset copy (painted like the truth), else the unpainted hold copy."""
    if row is None:
        return None
    for rel in (row.get("image"), row.get("hold_image")):
        if rel and (root / rel).is_file():
            return root / rel
    return None


def val_set(manifest: Manifest, store_root: Path) -> EvalSet:
    """The val frames of the dataset with their accepted labels as truth."""
    frames, skipped = [], 0
    for row in dataset_frames(manifest):
        if row["subset"] != "val":
            continue
        image = Path(store_root) / row["image"]
        if not image.is_file():
            skipped += 1
            continue
        w, h = int(row["width"]), int(row["height"])
        labels = manifest.labels_of(row["frame_id"])
        truth = [pixel_polygon(r, w, h) for r in labels if r["status"] == LabelStatus.ACCEPTED]
        frames.append(EvalFrame(row["frame_id"], image, w, h, truth))
    return EvalSet(VAL, frames, [], skipped)


def evaluation_set(manifest: Manifest, store_root: Path) -> EvalSet:
    """The gold set, or the val split when the gold set has no frame."""
    gold = gold_set(manifest, store_root)
    return gold if gold.frames else val_set(manifest, store_root)


def teacher_scores(parts: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """Precision and recall of the labeler's automatic acceptance on decided parts (``pipeline``, ``truth``).

    Precision: of the parts the pipeline accepted, the share people accepted too; recall: of the parts people
    accepted, the share the pipeline had accepted. None where the denominator is 0.
    """
    tp = sum(1 for p in parts if p["pipeline"] == LabelStatus.ACCEPTED and p["truth"])
    fp = sum(1 for p in parts if p["pipeline"] == LabelStatus.ACCEPTED and not p["truth"])
    fn = sum(1 for p in parts if p["pipeline"] != LabelStatus.ACCEPTED and p["truth"])
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "parts": len(parts),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }
