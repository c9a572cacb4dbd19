"""BENCHMARK CODE: score a dataset store written by ``streamlabel bench quality`` against the scene's truth.

Everything is read back from the store, as a training job would see it: the label files of the dataset (the
``labels/`` tree at the store's root, not review/, rejected/ or pending/) and the manifest's frame and label rows.

- precision: label lines in the dataset that lie on a true open eye (box of the polygon, IoU >= 0.5), one line
  per eye (a second line on the same eye counts as wrong), over all label lines in the dataset.
- recall_good: good candidates (manifest label rows whose mask lies on their own dog's open eye with IoU >= 0.5,
  in a frame without a person: ``true_checks`` all true) whose polygon is a line of the dataset.
- recall_passed: the same among the good candidates whose verdict passed with confidence >= the review threshold.
- review_share: candidates whose status is review; bad_share: candidates that are not good.
- ignore_per_frame: ignore regions (painted-out parts) per dataset frame, when the manifest records them.
- person_frames: dataset frames in which a person is (they must never reach it).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.bench.quality_scene import GOOD_IOU, FrameTruth, QualityScene, box_iou, true_checks
from streamlabel.frames import LabelStatus
from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store.dataset import DatasetStore

log = logging.getLogger(__name__)

DATASET_TREE = "labels"  # label files of the dataset live under <store>/labels/ (review/labels/ etc. do not count)
POOLED_COUNTS = ("good", "good_reached", "passed", "passed_reached")
SAME_POINT = 2e-6  # normalized coordinates closer than this are the same point (the files keep 6 decimals)


def polygon_box(points: np.ndarray) -> np.ndarray:
    """Box of a pixel polygon whose points are pixel indices: ``[x_min, y_min, x_max + 1, y_max + 1]``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0) + 1])


def matched_lines(boxes: list[np.ndarray], eyes: np.ndarray) -> int:
    """How many of ``boxes`` match a distinct eye with IoU >= ``GOOD_IOU`` (greedy, best IoU first)."""
    pairs = sorted(
        ((iou, b, e) for b, box in enumerate(boxes) for e, iou in enumerate(box_iou(box, eyes)) if iou >= GOOD_IOU),
        reverse=True,
    )
    used_boxes: set[int] = set()
    used_eyes: set[int] = set()
    for _, b, e in pairs:
        if b not in used_boxes and e not in used_eyes:
            used_boxes.add(b)
            used_eyes.add(e)
    return len(used_boxes)


def _in_dataset(label_rel: str | None) -> bool:
    return bool(label_rel) and Path(label_rel).parts[0] == DATASET_TREE


def _read_lines(path: Path) -> list[np.ndarray]:
    """Normalized polygons of a YOLO-seg label file."""
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(parse_yolo_line(line)[1].astype(np.float64))
    return out


def _same_polygon(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= SAME_POINT))


def _ignore_counter() -> Callable[[list[dict[str, Any]]], int] | None:
    """Counts the ignore regions of a dataset copy from its label rows with the store's own layout rule; None for a
    store version without ignore regions (nothing is painted there)."""
    try:
        from streamlabel.store.layout import plan_copies
        from streamlabel.store.rows import part_states
    except ImportError:
        return None
    return lambda rows: len(plan_copies(part_states(rows)).ignore_rows)


def score_store(store: DatasetStore, scene: QualityScene, review_threshold: float) -> dict[str, Any]:
    """The figures of one sequence's store (see the module doc); ratios are None when their base is empty."""
    frames = {r["frame_id"]: dict(r) for r in store.manifest.query("SELECT * FROM frames")}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.manifest.query("SELECT * FROM labels ORDER BY id"):
        rows[row["frame_id"]].append(dict(row))
    dataset_ids = [fid for fid, f in frames.items() if _in_dataset(f["label"])]
    lines = {fid: _read_lines(store.root / frames[fid]["label"]) for fid in dataset_ids}
    correct = total = person_frames = 0
    for fid in dataset_ids:
        f, truth = frames[fid], scene.truth[int(frames[fid]["seq"])]
        boxes = [polygon_box(p * [f["width"], f["height"]]) for p in lines[fid]]
        total += len(boxes)
        correct += matched_lines(boxes, truth.open_eyes)
        person_frames += truth.person is not None
    counts: dict[str, int] = defaultdict(int)
    for fid, frame_rows in rows.items():
        _count_candidates(counts, frames[fid], frame_rows, lines.get(fid, []), scene.truth, review_threshold)
    ignore = _ignore_counter()
    ignored = sum(ignore(rows[fid]) for fid in dataset_ids) if ignore is not None else 0
    return {
        "candidates": counts["candidates"],
        "bad_share": _ratio(counts["candidates"] - counts["good"], counts["candidates"]),
        "dataset_frames": len(dataset_ids),
        "dataset_labels": total,
        "precision": _ratio(correct, total),
        "recall_good": _ratio(counts["good_reached"], counts["good"]),
        "recall_passed": _ratio(counts["passed_reached"], counts["passed"]),
        "review_share": _ratio(counts["review"], counts["candidates"]),
        "ignore_per_frame": _ratio(ignored, len(dataset_ids)) or 0.0,
        "person_frames": person_frames,
        "reused": counts["reused"],
        "counts": {"correct": correct, "labels": total} | {k: counts[k] for k in POOLED_COUNTS},
    }


def _count_candidates(
    counts: dict[str, int],
    frame: dict[str, Any],
    rows: list[dict[str, Any]],
    lines: list[np.ndarray],
    truth: list[FrameTruth],
    review_threshold: float,
) -> None:
    """Count one frame's candidates: good ones, which reached the dataset, which passed, which went to review."""
    size = np.array([frame["width"], frame["height"]], dtype=np.float64)
    for row in rows:
        polygon = np.asarray(json.loads(row["polygon"]), dtype=np.float64).reshape(-1, 2)
        anchor = np.asarray(json.loads(row["anchor_xyxy"]), dtype=np.float64)
        checks = true_checks(truth[int(frame["seq"])], polygon_box(polygon * size), anchor)
        good = all(checks.values())
        clipped = np.clip(polygon, 0.0, 1.0)
        reached = any(_same_polygon(clipped, line) for line in lines)
        passed = bool(row.get("verdict_passed")) and (row.get("verdict_confidence") or 0.0) >= review_threshold
        counts["candidates"] += 1
        counts["good"] += good
        counts["good_reached"] += good and reached
        counts["passed"] += good and passed
        counts["passed_reached"] += good and passed and reached
        counts["review"] += row["status"] == LabelStatus.REVIEW
        counts["reused"] += bool(row.get("verdict_reused"))


def _ratio(part: float, whole: float) -> float | None:
    return round(float(part) / whole, 4) if whole else None
