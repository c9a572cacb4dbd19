"""Exports of a store's labels: a self-contained YOLO-seg folder or a COCO instance-segmentation JSON.

Both read the manifest, not the label files: the labels of the selected frames (``accepted`` ones of the dataset,
plus ``review`` ones with ``include_review``) and their normalized polygons. A COCO polygon is the YOLO polygon
times the image width and height, so the two exports describe the same masks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from streamlabel.store.dataset import atomic_write
from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

FORMATS = ("coco", "yolo", "label-studio", "cvat")  # the last two: store/export_tools.py
COCO_FILE = "annotations.json"
YOLO_DECIMALS = 6


class ExportError(RuntimeError):
    """The export cannot run (no store, a bad option); the message says why."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; a naive value means UTC.

    Raises ExportError naming the bad value.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"not an ISO 8601 date or time: {text!r} (e.g. 2026-11-22 or 2026-11-22T10:00:00)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Which frames an export or harvest takes: one stream or all, a time window [since, until), review too."""

    stream: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_review: bool = False

    def takes(self, stream: str, when: datetime) -> bool:
        if self.stream is not None and stream != self.stream:
            return False
        if self.since is not None and when < self.since:
            return False
        return self.until is None or when < self.until


@dataclass
class ExportLabel:
    """One label of an exported frame: class and normalized ``(K, 2)`` polygon."""

    class_id: int
    polygon: np.ndarray
    label_id: int


@dataclass
class ExportFrame:
    """A selected frame with its labels (normalized polygons) and where its image lies in the store."""

    frame_id: str
    stream: str
    time: datetime
    width: int
    height: int
    image: str
    labels: list[ExportLabel] = field(default_factory=list)

    @property
    def rel(self) -> Path:
        """Path below ``images/`` (and ``labels/``) without suffix: ``<stream>/<YYYY-MM-DD>/<frame_id>``."""
        return Path(self.stream) / f"{self.time:%Y-%m-%d}" / self.frame_id


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    format: str
    out: Path
    frames: int
    labels: int
    seconds: float

    def summary(self) -> str:
        return (
            f"exported {self.labels} labels on {self.frames} frames as {self.format} to {self.out} "
            f"({self.seconds:.1f} s)"
        )


def class_names(root: Path) -> list[str]:
    """The class names of a store, from its data.yaml (index order)."""
    data = yaml.safe_load((root / "data.yaml").read_text())
    names = data.get("names", {})
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    return [str(n) for n in names]


def select_frames(manifest: Manifest, selection: Selection) -> list[ExportFrame]:
    """The frames a selection takes, oldest first, each with its exported labels (frames without any are left out)."""
    splits = ("dataset", "review") if selection.include_review else ("dataset",)
    statuses = ("accepted", "review") if selection.include_review else ("accepted",)
    marks = ", ".join("?" * len(splits))
    rows = manifest.query(
        "SELECT f.frame_id, f.stream, f.time, f.width, f.height, f.image, l.id, l.class_id, l.polygon, l.status "
        f"FROM frames f JOIN labels l ON l.frame_id = f.frame_id WHERE f.split IN ({marks}) AND f.image IS NOT NULL "
        "AND l.idx >= 0 ORDER BY f.time, f.frame_id, l.idx",
        splits,
    )
    frames: dict[str, ExportFrame] = {}
    for r in rows:
        if r["status"] not in statuses:
            continue
        frame = frames.get(r["frame_id"])
        if frame is None:
            when = datetime.fromisoformat(r["time"]).astimezone(UTC)
            if not selection.takes(r["stream"], when):
                continue
            frame = ExportFrame(r["frame_id"], r["stream"], when, r["width"], r["height"], r["image"])
            frames[r["frame_id"]] = frame
        poly = np.clip(np.asarray(json.loads(r["polygon"]), np.float64).reshape(-1, 2), 0.0, 1.0)
        frame.labels.append(ExportLabel(int(r["class_id"]), poly, int(r["id"])))
    return sorted(frames.values(), key=lambda f: (f.time, f.frame_id))


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it; an existing ``dst`` is replaced."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def yolo_line(label: ExportLabel) -> str:
    """``class x1 y1 ...`` with normalized coordinates."""
    coords = " ".join(f"{v:.{YOLO_DECIMALS}f}" for v in label.polygon.ravel())
    return f"{label.class_id} {coords}"


def export_store(
    root: Path,
    fmt: str,
    out: Path,
    selection: Selection = Selection(),
    progress: Callable[[Iterable[ExportFrame], int], Iterable[ExportFrame]] | None = None,
) -> ExportReport:
    """Export the selected labels of the store at ``root`` to ``out`` as ``coco`` or ``yolo``.

    Args:
        root: the store folder (holds manifest.sqlite and data.yaml).
        fmt: ``coco`` (``out/annotations.json`` + ``out/images/``) or ``yolo`` (``out/images``, ``out/labels``,
            ``out/data.yaml``), ``label-studio`` (``out/tasks.json``, ``out/label_config.xml``) or ``cvat``
            (``out/annotations.xml``, CVAT for images 1.1); the last two carry confidences (``export_tools``).
        out: the export folder (created; files of an earlier export with the same names are replaced).
        selection: which frames; an empty selection writes a valid, empty export.
        progress: wraps the frame iterable (e.g. a rich progress bar); gets the frames and their count.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not (root / "manifest.sqlite").is_file() or not (root / "data.yaml").is_file():
        raise ExportError(f"no store at {root} (manifest.sqlite and data.yaml expected)")
    started = time.perf_counter()
    names = class_names(root)
    manifest = Manifest(root / "manifest.sqlite")
    try:
        frames = select_frames(manifest, selection)
    finally:
        manifest.close()
    out.mkdir(parents=True, exist_ok=True)
    iterable: Iterable[ExportFrame] = progress(frames, len(frames)) if progress else frames
    from streamlabel.store import export_tools  # imports this module: import it here, not at the top

    writers = {"coco": _write_coco, "yolo": _write_yolo, "cvat": export_tools.write_cvat}
    writer = writers.get(fmt, export_tools.write_label_studio)
    n_labels = writer(root, out, iterable, names)
    report = ExportReport(fmt, out, len(frames), n_labels, time.perf_counter() - started)
    log.info("%s", report.summary())
    return report


def _write_yolo(root: Path, out: Path, frames: Iterable[ExportFrame], names: list[str]) -> int:
    n = 0
    for frame in frames:
        link_or_copy(root / frame.image, out / "images" / frame.rel.with_suffix(".jpg"))
        lines = [yolo_line(label) for label in frame.labels]
        atomic_write(out / "labels" / frame.rel.with_suffix(".txt"), ("\n".join(lines) + "\n").encode())
        n += len(lines)
    (out / "images").mkdir(exist_ok=True)
    # No `path:` key: Ultralytics then resolves train/val against this file's folder, so the export can move.
    data = {"train": "images", "val": "images", "names": dict(enumerate(names))}
    text = "# Ultralytics dataset exported by streamlabel: yolo segment train data=<this file>\n"
    atomic_write(out / "data.yaml", (text + yaml.safe_dump(data, sort_keys=False)).encode())
    return n


def coco_annotation(label: ExportLabel, frame: ExportFrame, ann_id: int, image_id: int) -> dict[str, Any]:
    """A COCO annotation: the polygon in pixels, its bounding box and its area (shoelace)."""
    pts = label.polygon * [frame.width, frame.height]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": label.class_id + 1,
        "segmentation": [np.round(pts.ravel(), 2).tolist()],
        "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
        "area": round(area, 2),
        "iscrowd": 0,
        "streamlabel_label_id": label.label_id,
    }


def _write_coco(root: Path, out: Path, frames: Iterable[ExportFrame], names: list[str]) -> int:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, frame in enumerate(frames, start=1):
        file_name = str(frame.rel.with_suffix(".jpg"))
        link_or_copy(root / frame.image, out / "images" / file_name)
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": frame.width,
                "height": frame.height,
                "date_captured": frame.time.isoformat(),
                "frame_id": frame.frame_id,
                "stream": frame.stream,
            }
        )
        for label in frame.labels:
            annotations.append(coco_annotation(label, frame, len(annotations) + 1, image_id))
    (out / "images").mkdir(exist_ok=True)
    doc = {
        "info": {"description": "streamlabel export", "date_created": datetime.now(UTC).isoformat()},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        # COCO category ids start at 1; category_id = YOLO class index + 1.
        "categories": [{"id": i + 1, "name": n, "supercategory": "part"} for i, n in enumerate(names)],
    }
    atomic_write(out / COCO_FILE, json.dumps(doc).encode())
    return len(annotations)
