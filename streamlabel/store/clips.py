"""Clips of finished track segments: an MP4 (remuxed from a file source, else H.264-encoded) plus a JSON sidecar.

``clips/<stream>/<clip_id>.mp4`` covers ``[start_pts - tracking.clip_pre_s, end_pts + tracking.clip_post_s]``.
From a file source the video packets are copied without re-encoding, starting at the keyframe at or before the
clip start (so the first frame decodes); otherwise the sampled frames given by the caller are encoded with
libx264 at their own timestamps. Both files are written to temporary names and renamed into place, then the
``clips`` row and its ClipEvent go into the manifest in one transaction.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamlabel.events.models import ClipEvent, utc_iso
from streamlabel.events.outbox import enqueue_event
from streamlabel.frames import Frame, LabelStatus
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.staging import atomic_write, fsync_dir

if TYPE_CHECKING:
    from streamlabel.config import Config
    from streamlabel.tracking.segments import TrackSegment

log = logging.getLogger(__name__)

CLIPS_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    clip_id    TEXT PRIMARY KEY,
    stream     TEXT NOT NULL,
    track_id   INTEGER,
    class_name TEXT,
    path       TEXT,                 -- MP4 relative to the store root, NULL once pruned
    sidecar    TEXT,                 -- JSON sidecar relative to the store root, NULL once pruned
    method     TEXT NOT NULL,        -- remux | encode
    codec      TEXT NOT NULL,
    start_pts  REAL NOT NULL,        -- clip start/end in seconds of the stream (roll included)
    end_pts    REAL NOT NULL,
    start_time TEXT NOT NULL,        -- UTC ISO 8601 of start_pts / end_pts
    end_time   TEXT NOT NULL,
    frame_ids  TEXT NOT NULL,        -- JSON list: the segment's frames
    frames     INTEGER NOT NULL,
    labels     INTEGER NOT NULL,     -- accepted labels on those frames
    bytes      INTEGER NOT NULL,     -- MP4 + sidecar size
    created    TEXT NOT NULL,
    pruned     TEXT                  -- when retention removed the files (the row stays)
);
CREATE INDEX IF NOT EXISTS clips_stream_time ON clips(stream, start_time);
"""
ENCODER = "libx264"
ENCODE_CRF = "23"
SIDECAR_VERSION = 1


def ensure_clips_table(db: sqlite3.Connection) -> None:
    """Create the ``clips`` table (inside the caller's transaction) when the manifest has none yet."""
    for stmt in CLIPS_SCHEMA.split(";"):
        if stmt.strip():
            db.execute(stmt)


@dataclass(frozen=True)
class ClipRecord:
    """A written clip."""

    clip_id: str
    path: Path
    sidecar: Path
    method: str
    codec: str
    start_pts: float
    end_pts: float
    frames: int
    labels: int
    event_id: str


def clip_id_of(segment: TrackSegment) -> str:
    """``<stream>_<YYYYmmddTHHMMSSmmm>Z_t<track_id>``: the segment's start time and track; stable per segment."""
    t = segment.start_time.astimezone(UTC)
    return f"{segment.stream}_{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z_t{segment.track_id}"


def _local_file(url: str | None) -> Path | None:
    from streamlabel.streams.source import is_live

    if not url or is_live(url):
        return None
    path = Path(url.removeprefix("file://"))
    return path if path.is_file() else None


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _fsync_rename(tmp: Path, path: Path, durable: bool = False) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def remux(source: Path, out: Path, start_s: float, end_s: float) -> tuple[str, float, float, int]:
    """Copy the video packets of ``source`` covering ``[start_s, end_s]`` (seconds from its first frame) to ``out``.

    Starts at the keyframe at or before ``start_s``; timestamps are rebased to 0. Returns the codec name, the
    stream times (seconds) of the first and the last copied frame (the last never past the file's end, whatever
    ``end_s`` asked for), and the number of packets. Raises ValueError when the range holds no packet.
    """
    import av

    with av.open(str(source), metadata_errors="replace") as inp:
        vin = inp.streams.video[0]
        tb = vin.time_base
        origin = vin.start_time if vin.start_time is not None else 0
        inp.seek(int((start_s / tb) + origin) if start_s > 0 else origin, stream=vin, backward=True, any_frame=False)
        kept: list[Any] = []
        for packet in inp.demux(vin):
            if packet.dts is None or packet.size == 0:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            t = float((pts - origin) * tb)
            if packet.is_keyframe and t <= start_s + 1e-6:
                kept = [packet]  # a later keyframe still at or before the start: begin there
                continue
            if not kept:
                if not packet.is_keyframe:
                    continue  # the seek landed before a keyframe: nothing decodes without it
                kept = [packet]
                continue
            if float((packet.dts - origin) * tb) > end_s:
                break
            kept.append(packet)
        if not kept:
            raise ValueError(f"no video packet in [{start_s:.3f}, {end_s:.3f}] s of {source}")
        first = kept[0]
        first_pts = first.pts if first.pts is not None else first.dts
        last_pts = max(p.pts if p.pts is not None else p.dts for p in kept)
        offset = first_pts  # the first frame shows at 0 (dts may go below 0 with B-frames: an edit list)
        with av.open(str(out), "w", format="mp4") as dst:
            vout = dst.add_stream_from_template(vin)
            for packet in kept:
                packet.dts -= offset
                if packet.pts is not None:
                    packet.pts -= offset
                packet.stream = vout
                dst.mux(packet)
        return vin.codec_context.name, float((first_pts - origin) * tb), float((last_pts - origin) * tb), len(kept)


def encode(frames: Sequence[Frame], out: Path) -> str:
    """H.264-encode ``frames`` (RGB) to ``out`` at their own timestamps (ms resolution); returns the codec name."""
    import av

    h, w = (frames[0].height // 2) * 2, (frames[0].width // 2) * 2  # yuv420p needs even sizes
    dts = np.diff([f.pts for f in frames])
    fps = Fraction(1 / float(np.median(dts))).limit_denominator(1000) if len(dts) and np.median(dts) > 0 else 1
    with av.open(str(out), "w", format="mp4") as dst:
        stream = dst.add_stream(ENCODER, rate=fps, options={"crf": ENCODE_CRF, "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        last = -1
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f.image[:h, :w]), format="rgb24")
            pts = max(round((f.pts - frames[0].pts) * 1000), last + 1)
            vf.pts, vf.time_base, last = pts, Fraction(1, 1000), pts
            dst.mux(stream.encode(vf))
        dst.mux(stream.encode(None))
    return "h264"


class ClipWriter:
    """Cuts clips of finished track segments into ``clips/<stream>/`` and records them (one per segment)."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        self.store = store
        self.pre_s = cfg.tracking.clip_pre_s
        self.post_s = cfg.tracking.clip_post_s
        self.enabled = cfg.store.clips
        with store.manifest.transaction() as db:
            ensure_clips_table(db)

    def write(self, segment: TrackSegment, source_url: str | None, frames: Sequence[Frame] = ()) -> ClipRecord | None:
        """Write the clip of ``segment``: remux from ``source_url`` when it is a local file, else encode ``frames``.

        Returns None (and logs why) when clips are off, the clip exists already, or there is nothing to cut.
        """
        if not self.enabled:
            return None
        clip_id = clip_id_of(segment)
        if self.store.manifest.query("SELECT 1 FROM clips WHERE clip_id = ?", (clip_id,)):
            log.info("clip %s exists already", clip_id)
            return None
        start_s, end_s = max(0.0, segment.start_pts - self.pre_s), segment.end_pts + self.post_s
        rel = Path("clips") / segment.stream / f"{clip_id}.mp4"
        path = self.store.root / rel
        tmp = _temp_beside(path)
        source = _local_file(source_url)
        try:
            if source is not None:
                codec, video_start, video_end, _ = remux(source, tmp, start_s, end_s)
                method, end_s = "remux", min(end_s, video_end)  # the post-roll cannot run past the file's end
            else:
                chosen = [f for f in frames if start_s - 1e-6 <= f.pts <= end_s + 1e-6]
                if not chosen:
                    log.warning("clip %s: no source file and no frames to encode; skipped", clip_id)
                    tmp.unlink(missing_ok=True)
                    return None
                codec, video_start, method = encode(chosen, tmp), chosen[0].pts, "encode"
                start_s, end_s = chosen[0].pts, chosen[-1].pts
            _fsync_rename(tmp, path, self.store.durable)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        start_s = min(start_s, video_start)
        sidecar = self._sidecar(segment, clip_id, rel, method, codec, start_s, end_s, video_start)
        sidecar_rel = rel.with_suffix(".json")
        atomic_write(self.store.root / sidecar_rel, json.dumps(sidecar, indent=1).encode(), durable=self.store.durable)
        n_labels = sum(1 for f in sidecar["frames"] for lb in f["labels"] if lb["status"] == "accepted")
        start_time, end_time = self._time_of(segment, start_s), self._time_of(segment, end_s)
        size = path.stat().st_size + (self.store.root / sidecar_rel).stat().st_size
        event = ClipEvent(
            stream=segment.stream,
            time=utc_iso(start_time),
            clip_id=clip_id,
            path=str(rel),
            sidecar=str(sidecar_rel),
            track_id=segment.track_id,
            class_name=segment.class_name,
            start=utc_iso(start_time),
            end=utc_iso(end_time),
            frames=len(segment.frame_ids),
            labels=n_labels,
        )
        with self.store.manifest.transaction() as db:
            ensure_clips_table(db)
            db.execute(
                "INSERT INTO clips (clip_id, stream, track_id, class_name, path, sidecar, method, codec, start_pts, "
                "end_pts, start_time, end_time, frame_ids, frames, labels, bytes, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    clip_id, segment.stream, segment.track_id, segment.class_name, str(rel), str(sidecar_rel),
                    method, codec, start_s, end_s, start_time.isoformat(), end_time.isoformat(),
                    json.dumps(list(segment.frame_ids)), len(segment.frame_ids), n_labels, size, utc_iso(),
                ),
            )  # fmt: skip
            event_id = enqueue_event(db, event, clip_id=clip_id)
        log.info("clip %s: %s, %.1f-%.1f s, %d labels", clip_id, method, start_s, end_s, n_labels)
        return ClipRecord(
            clip_id, path, self.store.root / sidecar_rel, method, codec, start_s, end_s, len(segment.frame_ids),
            n_labels, event_id,
        )  # fmt: skip

    @staticmethod
    def _time_of(segment: TrackSegment, pts: float) -> datetime:
        return segment.start_time + timedelta(seconds=pts - segment.start_pts)

    def _sidecar(
        self,
        segment: TrackSegment,
        clip_id: str,
        rel: Path,
        method: str,
        codec: str,
        start_s: float,
        end_s: float,
        video_start: float,
    ) -> dict[str, Any]:
        """Per-frame labels (from the manifest rows of the segment's frames) and the tracks seen in them."""
        ids = list(segment.frame_ids)
        marks = ", ".join("?" * len(ids))
        frames = {
            r["frame_id"]: dict(r)
            for r in self.store.manifest.query(
                f"SELECT frame_id, seq, pts, time, width, height, split, image, label FROM frames "
                f"WHERE frame_id IN ({marks})",
                tuple(ids),
            )
        }
        labels: dict[str, list[dict[str, Any]]] = {fid: [] for fid in ids}
        # Rejected candidates are kept only where the store keeps rejections (``store.keep_rejected``).
        hide = "" if self.store.keep_rejected else f"AND status != '{LabelStatus.REJECTED}' "
        for r in self.store.manifest.query(
            "SELECT frame_id, idx, class_name, status, xyxy, anchor_xyxy, anchor_class, polygon, track_id, "
            f"verdict_passed, verdict_confidence FROM labels WHERE frame_id IN ({marks}) {hide}ORDER BY id",
            tuple(ids),
        ):
            row = dict(r)
            for key in ("xyxy", "anchor_xyxy", "polygon"):
                row[key] = json.loads(row[key])
            labels[row.pop("frame_id")].append(row)
        tracks: dict[int, list[str]] = {}
        out_frames = []
        for fid in ids:
            if fid not in frames:
                continue  # matched by the tracker but nothing was stored for it
            f = frames[fid]
            f["offset_s"] = round(f["pts"] - video_start, 6)  # where the frame is in the MP4
            f["labels"] = labels[fid]
            out_frames.append(f)
            for lb in labels[fid]:
                if lb["track_id"] is not None:
                    tracks.setdefault(lb["track_id"], []).append(fid)
        return {
            "v": SIDECAR_VERSION,
            "clip_id": clip_id,
            "video": rel.name,
            "stream": segment.stream,
            "method": method,
            "codec": codec,
            "start_pts": start_s,
            "end_pts": end_s,
            "segment": {
                "track_id": segment.track_id,
                "class_name": segment.class_name,
                "start_pts": segment.start_pts,
                "end_pts": segment.end_pts,
                "start_time": segment.start_time.isoformat(),
                "end_time": segment.end_time.isoformat(),
                "frame_ids": ids,
            },
            "frames": out_frames,
            "tracks": [{"track_id": t, "frame_ids": fids} for t, fids in sorted(tracks.items())],
        }
