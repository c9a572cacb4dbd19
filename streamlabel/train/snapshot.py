"""Freezing the dataset a run trains on: the snapshot (frame ids and label hashes) and its own Ultralytics folder.

The store keeps changing while a run trains (new frames, people's decisions re-render images and labels, retention
deletes files), so a run never reads ``<store>/data.yaml``. It takes a snapshot first: the dataset frames of the
manifest, minus the gold set and its near-copies, with the SHA-256 of each label file as read. The run folder then
gets ``dataset/images/<train|val>/<frame_id>.jpg`` (hard links: a later rename in the store does not change them;
a copy where links are impossible) and ``dataset/labels/...`` (copies of the bytes hashed), and a ``data.yaml``
naming only them. Ultralytics writes its label cache there too, never into the store.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from streamlabel.store.manifest import Manifest, utc_now
from streamlabel.store.trained_models import audit_frames, dataset_frames

log = logging.getLogger(__name__)

SUBSETS = ("train", "val")


class DatasetError(ValueError):
    """The store has no dataset a run can train on (no frames, no val frames, unreadable files)."""


@dataclass(frozen=True)
class SnapshotFrame:
    """One frame of a snapshot: where its files are in the store, and the hash of its label file."""

    frame_id: str
    subset: str
    image: str  # relative to the store root
    label: str
    label_sha256: str


@dataclass
class Snapshot:
    """The frozen dataset of one run."""

    frames: list[SnapshotFrame]
    excluded: dict[str, int] = field(default_factory=dict)  # gold, near_gold, missing: frames left out and why
    since: str | None = None
    created: str = field(default_factory=utc_now)

    @property
    def counts(self) -> dict[str, int]:
        """Frames per subset."""
        return {s: sum(f.subset == s for f in self.frames) for s in SUBSETS}

    @property
    def hash(self) -> str:
        """SHA-256 of the frame ids, subsets and label hashes (the same dataset gives the same hash)."""
        rows = sorted((f.frame_id, f.subset, f.label_sha256) for f in self.frames)
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """What ``snapshot.json`` holds."""
        return {
            "hash": self.hash,
            "created": self.created,
            "since": self.since,
            "counts": self.counts,
            "excluded": self.excluded,
            "frames": [
                {"frame_id": f.frame_id, "subset": f.subset, "label_sha256": f.label_sha256} for f in self.frames
            ],
        }


def near_gold(rows: Iterable[dict[str, Any]], gold: Iterable[dict[str, Any]], guard_s: float) -> set[str]:
    """Frame ids of ``rows`` within ``guard_s`` seconds of a gold frame of the same stream (gold frames included)."""
    times: dict[str, list[float]] = defaultdict(list)
    for g in gold:
        times[g["stream"]].append(datetime.fromisoformat(g["time"]).timestamp())
    for stream_times in times.values():
        stream_times.sort()
    out = set()
    for row in rows:
        stream_times = times.get(row["stream"])
        if not stream_times:
            continue
        t = datetime.fromisoformat(row["time"]).timestamp()
        k = bisect.bisect_left(stream_times, t - guard_s)
        if k < len(stream_times) and stream_times[k] <= t + guard_s:
            out.add(row["frame_id"])
    return out


def take_snapshot(manifest: Manifest, store_root: Path, guard_s: float, since: str | None = None) -> Snapshot:
    """The dataset frames (captured at or after ``since``) minus the gold set and frames within ``guard_s`` of it.

    Label files are hashed here; a frame whose files are gone (pruned meanwhile) is left out and counted.
    """
    rows = dataset_frames(manifest, since)
    gold = audit_frames(manifest)
    gold_ids = {g["frame_id"] for g in gold}
    guarded = near_gold(rows, gold, guard_s)
    frames, missing = [], 0
    for row in rows:
        if row["frame_id"] in guarded:
            continue
        label = Path(store_root) / row["label"]
        try:
            digest = hashlib.sha256(label.read_bytes()).hexdigest()
        except OSError:
            missing += 1
            continue
        subset = row["subset"] if row["subset"] in SUBSETS else "train"
        frames.append(SnapshotFrame(row["frame_id"], subset, row["image"], row["label"], digest))
    in_gold = sum(r["frame_id"] in gold_ids for r in rows)
    excluded = {"gold": in_gold, "near_gold": len(guarded) - in_gold, "missing": missing}
    return Snapshot(frames, excluded, since)


def check_trainable(snapshot: Snapshot, store_root: Path) -> None:
    """Raise ``DatasetError`` naming the fix when Ultralytics could not train on the snapshot (no train or val)."""
    counts = snapshot.counts
    if counts["train"] == 0:
        raise DatasetError(
            f"the store {store_root} has no training frames to train on ({snapshot.excluded} left out, since "
            f"{snapshot.since or 'the start'}): label more footage (`streamlabel run`) or widen --since"
        )
    if counts["val"] == 0:
        raise DatasetError(
            f"the store {store_root} has {counts['train']} training frames but none in val (images/val is empty: "
            "val is chosen per camera-day, docs/store.md): raise store.val_fraction so that a camera-day lands in "
            "val, or wait for more days of footage"
        )


def materialize(snapshot: Snapshot, store_root: Path, run_folder: Path, class_names: list[str]) -> Path:
    """Write the run's own dataset folder, ``snapshot.json`` and ``data.yaml`` (module doc); returns ``data.yaml``.

    A label file that changed since the snapshot hashed it gets its new hash; a frame whose files went meanwhile
    is dropped from the snapshot (counted as missing).
    """
    base, kept = run_folder / "dataset", []
    for f in snapshot.frames:
        image_to = base / "images" / f.subset / f"{f.frame_id}.jpg"
        label_to = base / "labels" / f.subset / f"{f.frame_id}.txt"
        image_to.parent.mkdir(parents=True, exist_ok=True)
        label_to.parent.mkdir(parents=True, exist_ok=True)
        try:
            _link_or_copy(Path(store_root) / f.image, image_to)
            shutil.copyfile(Path(store_root) / f.label, label_to)
        except FileNotFoundError:
            image_to.unlink(missing_ok=True)
            snapshot.excluded["missing"] = snapshot.excluded.get("missing", 0) + 1
            continue
        digest = hashlib.sha256(label_to.read_bytes()).hexdigest()
        if digest != f.label_sha256:
            log.info("train: the label of %s changed after the snapshot hashed it; it has its new hash", f.frame_id)
        kept.append(replace(f, label_sha256=digest))
    snapshot.frames = kept
    data = {"path": str(base.resolve()), "train": "images/train", "val": "images/val"}
    data["names"] = dict(enumerate(class_names))
    path = run_folder / "data.yaml"
    path.write_text("# the frozen dataset of this run (snapshot.json)\n" + yaml.safe_dump(data, sort_keys=False))
    (run_folder / "snapshot.json").write_text(json.dumps(snapshot.to_json(), indent=1))
    return path


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
