"""Harvest: copy clips, their sidecars and their labeled frames into a self-contained folder for a training job.

Layout of the harvest folder::

    clips/<stream>/<clip_id>.mp4 + .json     the clips and their sidecars, as in the store
    images/<stream>/<YYYY-MM-DD>/<frame_id>.jpg, labels/...   the clips' dataset frames with their accepted labels
    data.yaml                                 Ultralytics dataset file over images/ (relocatable: no `path:`)
    manifest.json                             every clip with its frame ids, times and label counts
    README.txt                                what the folder holds, in words
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from streamlabel.store.dataset import atomic_write
from streamlabel.store.export import (
    ExportError,
    ExportFrame,
    Selection,
    class_names,
    link_or_copy,
    select_frames,
    yolo_line,
)
from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

README = """Clips and labels harvested by streamlabel ({created}).

clips/<stream>/<clip_id>.mp4    one clip per finished track segment (pre- and post-roll included); a long
                                track comes as consecutive clips with the same "track" in manifest.json
clips/<stream>/<clip_id>.json   its sidecar: per-frame labels (normalized polygons, status, verdict), tracks,
                                and each frame's offset_s, the time of the frame in the MP4
images/ labels/                 the clips' dataset frames and their accepted labels (YOLO-seg, class x1 y1 ...)
data.yaml                       yolo segment train data=data.yaml
manifest.json                   the clips with their frames, times and label counts

{clips} clips, {frames} frames, {labels} labels. Selection: {selection}.
"""


@dataclass(frozen=True)
class HarvestReport:
    """What a harvest copied."""

    out: Path
    clips: int
    frames: int
    labels: int
    seconds: float

    def summary(self) -> str:
        return (
            f"harvested {self.clips} clips with {self.frames} frames and {self.labels} labels to {self.out} "
            f"({self.seconds:.1f} s)"
        )


def select_clips(
    manifest: Manifest, stream: str | None = None, since: datetime | None = None, min_labels: int = 0
) -> list[dict[str, Any]]:
    """Clip rows (files still present) of a stream or all, starting at or after ``since``, oldest first.

    The consecutive clips of one track (pieces cut at ``tracking.clip_max_s``) are one track: each row gets
    ``track_key`` (the clip id of the track's first piece), and ``min_labels`` counts the whole track's labels.
    """
    if not manifest.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'clips'"):
        return []
    rows = [dict(r) for r in manifest.query("SELECT * FROM clips WHERE path IS NOT NULL ORDER BY start_time, clip_id")]
    last: dict[tuple[str, int], dict[str, Any]] = {}  # (stream, track id) -> its latest piece so far
    for r in rows:
        before = last.get((r["stream"], r["track_id"]))
        joined = before is not None and r.get("part", 0) == before.get("part", 0) + 1
        r["track_key"] = before["track_key"] if joined and before is not None else r["clip_id"]
        last[(r["stream"], r["track_id"])] = r
    labels: dict[str, int] = {}
    for r in rows:
        labels[r["track_key"]] = labels.get(r["track_key"], 0) + r["labels"]
    out = []
    for r in rows:
        start = datetime.fromisoformat(r["start_time"]).astimezone(UTC)
        wanted = (stream is None or r["stream"] == stream) and (since is None or start >= since)
        if wanted and labels[r["track_key"]] >= min_labels:
            out.append(r)
    return out


def harvest_clips(
    root: Path,
    out: Path,
    stream: str | None = None,
    since: datetime | None = None,
    min_labels: int = 1,
    progress: Callable[[Iterable[dict[str, Any]], int], Iterable[dict[str, Any]]] | None = None,
) -> HarvestReport:
    """Copy the selected clips of the store at ``root``, their sidecars and dataset frames to ``out``.

    Args:
        root: the store folder.
        out: the harvest folder (created; files of an earlier harvest with the same names are replaced).
        stream: only this stream's clips.
        since: only clips starting at or after this time (aware UTC).
        min_labels: only clips with at least this many accepted labels.
        progress: wraps the clip iterable (a progress bar); gets the clips and their count.
    """
    if not (root / "manifest.sqlite").is_file() or not (root / "data.yaml").is_file():
        raise ExportError(f"no store at {root} (manifest.sqlite and data.yaml expected)")
    started = time.perf_counter()
    manifest = Manifest(root / "manifest.sqlite")
    try:
        clips = select_clips(manifest, stream, since, min_labels)
        frames = {f.frame_id: f for f in select_frames(manifest, Selection(stream=stream))}
    finally:
        manifest.close()
    out.mkdir(parents=True, exist_ok=True)
    listed, copied = [], {}
    for clip in progress(clips, len(clips)) if progress else clips:
        if not (root / clip["path"]).is_file():
            log.warning("clip %s: %s is missing; skipped", clip["clip_id"], clip["path"])
            continue
        link_or_copy(root / clip["path"], out / clip["path"])
        if clip["sidecar"] and (root / clip["sidecar"]).is_file():
            link_or_copy(root / clip["sidecar"], out / clip["sidecar"])
        clip_frames = [fid for fid in json.loads(clip["frame_ids"]) if fid in frames]
        for fid in clip_frames:
            if fid not in copied:
                copied[fid] = _copy_frame(root, out, frames[fid])
        listed.append(_entry(clip, clip_frames, frames))
    n_labels = sum(copied.values())
    (out / "images").mkdir(exist_ok=True)
    names = class_names(root)
    data = {"train": "images", "val": "images", "names": dict(enumerate(names))}
    atomic_write(out / "data.yaml", ("# streamlabel harvest\n" + yaml.safe_dump(data, sort_keys=False)).encode())
    doc = {"v": 1, "created": datetime.now(UTC).isoformat(), "store": str(root.resolve()), "clips": listed}
    atomic_write(out / "manifest.json", json.dumps(doc, indent=1).encode())
    selection = f"stream={stream or 'all'}, since={since.isoformat() if since else '-'}, min_labels={min_labels}"
    text = README.format(
        created=doc["created"], clips=len(listed), frames=len(copied), labels=n_labels, selection=selection
    )
    atomic_write(out / "README.txt", text.encode())
    report = HarvestReport(out, len(listed), len(copied), n_labels, time.perf_counter() - started)
    log.info("%s", report.summary())
    return report


def _copy_frame(root: Path, out: Path, frame: ExportFrame) -> int:
    link_or_copy(root / frame.image, out / "images" / frame.rel.with_suffix(".jpg"))
    lines = [yolo_line(label) for label in frame.labels]
    atomic_write(out / "labels" / frame.rel.with_suffix(".txt"), ("\n".join(lines) + "\n").encode())
    return len(lines)


def _entry(clip: dict[str, Any], frame_ids: list[str], frames: dict[str, ExportFrame]) -> dict[str, Any]:
    return {
        "clip_id": clip["clip_id"],
        "stream": clip["stream"],
        "video": clip["path"],
        "sidecar": clip["sidecar"],
        "track_id": clip["track_id"],
        "track": clip["track_key"],
        "part": clip.get("part", 0),
        "class_name": clip["class_name"],
        "method": clip["method"],
        "start": clip["start_time"],
        "end": clip["end_time"],
        "labels": clip["labels"],
        "frames": [
            {"frame_id": fid, "image": f"images/{frames[fid].rel}.jpg", "label": f"labels/{frames[fid].rel}.txt"}
            for fid in frame_ids
        ],
    }
