"""Clips of finished track segments: an MP4 (remuxed from a file source, else H.264-encoded) plus a JSON sidecar.

``clips/<stream>/<clip_id>.mp4`` covers ``[start_pts - tracking.clip_pre_s, end_pts + tracking.clip_post_s]``.
From a file source the video packets are copied without re-encoding, starting at the keyframe at or before the
clip start (so the first frame decodes); otherwise the sampled frames given by the caller are encoded with
libx264 at their own timestamps. A clip with a person in its range (``PeopleSpan`` of the sampled frames'
``FrameResult.people``) is re-encoded with the people pixelated (``privacy.people: blur``, method ``blur``: decoded
from the file, or the sampled frames) or not written (``drop``, counted). Both files are written to temporary
names and renamed into place, then the ``clips`` row and its ClipEvent go into the manifest in one transaction, all
under the store's clip intent (``staging.CLIP_INTENT_FILE``): a crash at any step leaves the three or none. A track
longer than ``tracking.clip_max_s`` comes as consecutive pieces (``part`` 0, 1, ...), each its own clip of the
same track.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamlabel.events.models import ClipEvent, utc_iso
from streamlabel.events.outbox import enqueue_event
from streamlabel.frames import Frame, LabelStatus
from streamlabel.store.clip_pending import (  # noqa: F401  (count_pending and segment_* are re-exported)
    add_pending,
    clip_id_of,
    count_pending,
    forget_pending,
    pending_clips,
    pending_people,
    segment_json,
    segment_of,
)
from streamlabel.store.clip_people import PeopleSpan, PeopleTimeline
from streamlabel.store.clip_video import _fsync_rename, _local_file, _temp_beside, encode, reencode, remux
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.staging import CLIP_INTENT_FILE, Staging, atomic_write

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
    method     TEXT NOT NULL,        -- remux | encode | blur (re-encoded, people pixelated)
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
    pruned     TEXT,                 -- when retention removed the files (the row stays)
    part       INTEGER NOT NULL DEFAULT 0  -- 0, 1, 2, ...: the pieces of one track cut at tracking.clip_max_s
);
CREATE INDEX IF NOT EXISTS clips_stream_time ON clips(stream, start_time);
"""
SIDECAR_VERSION = 1


def ensure_clips_table(db: sqlite3.Connection) -> None:
    """Create the ``clips`` table (inside the caller's transaction) when the manifest has none yet; a table of an
    older store gets its ``part`` column."""
    for stmt in CLIPS_SCHEMA.split(";"):
        if stmt.strip():
            db.execute(stmt)
    if "part" not in {r[1] for r in db.execute("PRAGMA table_info(clips)")}:
        db.execute("ALTER TABLE clips ADD COLUMN part INTEGER NOT NULL DEFAULT 0")


def _clip_event(
    segment: TrackSegment, clip_id: str, rel: Path, start_time: datetime, end_time: datetime, n_labels: int
) -> ClipEvent:
    return ClipEvent(
        stream=segment.stream,
        time=utc_iso(start_time),
        clip_id=clip_id,
        path=str(rel),
        sidecar=str(rel.with_suffix(".json")),
        track_id=segment.track_id,
        part=segment.part,
        class_name=segment.class_name,
        start=utc_iso(start_time),
        end=utc_iso(end_time),
        frames=len(segment.frame_ids),
        labels=n_labels,
    )


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


class ClipWriter:
    """Cuts clips of finished track segments into ``clips/<stream>/`` and records them (one per segment)."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        self.store = store
        self.pre_s = cfg.tracking.clip_pre_s
        self.post_s = cfg.tracking.clip_post_s
        self.enabled = cfg.store.clips
        self.privacy = cfg.privacy
        # Person boxes of the sampled frames, long enough for the longest clip cut a little after its track ended.
        horizon_s = 2 * (self.pre_s + cfg.tracking.clip_max_s + self.post_s + cfg.tracking.max_age_s) + 60.0
        self.people = PeopleTimeline(horizon_s)
        self.private_dropped: Counter[str] = Counter()  # clips with people not written (privacy.people: drop)
        self._staging = Staging(store.root, store.manifest, store.durable, CLIP_INTENT_FILE)
        with store.manifest.transaction() as db:
            ensure_clips_table(db)

    def people_for(self, segment: TrackSegment) -> PeopleSpan:
        """The person boxes of the sampled frames of ``segment``'s clip range (from ``people``; take them when the
        segment is cut, the timeline forgets old frames)."""
        return self.people.span(segment.stream, *self._range_of(segment))

    def write(
        self,
        segment: TrackSegment,
        source_url: str | None,
        frames: Sequence[Frame] = (),
        people: PeopleSpan | None = None,
    ) -> ClipRecord | None:
        """Write the clip of ``segment``: remux from ``source_url`` when it is a local file, else encode ``frames``;
        when ``people`` (default: ``people_for`` now, or what a pending clip recorded) has a person in the clip's
        range, re-encode it with the people pixelated (``privacy.people: blur``) or write nothing (``drop``).

        The MP4, its sidecar and the ``clips`` row are written under the store's clip intent: a crash at any point
        leaves all three or none once the store is opened again. Returns None (and logs why) when clips are off,
        the clip exists already, privacy drops it, or there is nothing to cut.
        """
        if not self.enabled:
            return None
        clip_id = clip_id_of(segment)
        if self.store.manifest.query("SELECT 1 FROM clips WHERE clip_id = ?", (clip_id,)):
            log.info("clip %s exists already", clip_id)
            self._drop_pending(clip_id)
            return None
        if people is None:
            people = pending_people(self.store, clip_id) or self.people_for(segment)
        if self._private_drop(segment, clip_id, people):
            return None
        rel = Path("clips") / segment.stream / f"{clip_id}.mp4"
        with self._staging.clip(clip_id, [str(rel), str(rel.with_suffix(".json"))]):
            cut = self._cut_video(segment, clip_id, self.store.root / rel, source_url, frames, people)
            if cut is None:
                self._drop_pending(clip_id)
                return None
            return self._record(segment, clip_id, rel, *cut)

    def _private_drop(self, segment: TrackSegment, clip_id: str, people: PeopleSpan) -> bool:
        """With ``privacy.people: drop``, whether the clip has a person (then it is counted and not written)."""
        if self.privacy.people != "drop" or not people.has_people:
            return False
        self.private_dropped[segment.stream] += 1
        if self.private_dropped[segment.stream] == 1:
            log.info("stream %s: clips with a person are not written (privacy.people: drop; counted)", segment.stream)
        log.debug("clip %s not written: a person in %d sampled frames", clip_id, people.person_samples)
        self._drop_pending(clip_id)
        return True

    def _drop_pending(self, clip_id: str) -> None:
        with self.store.manifest.transaction() as db:
            forget_pending(db, clip_id)

    def _range_of(self, segment: TrackSegment) -> tuple[float, float]:
        """The clip's stream times: pre-roll before the first piece of a track, post-roll after its last; pieces
        cut at ``clip_max_s`` run on to where the next piece starts, so consecutive clips leave no gap."""
        pre_s = self.pre_s if segment.part == 0 else 0.0
        end_s = segment.next_start_pts if segment.next_start_pts is not None else segment.end_pts + self.post_s
        return max(0.0, segment.start_pts - pre_s), end_s

    def _cut_video(
        self,
        segment: TrackSegment,
        clip_id: str,
        path: Path,
        source_url: str | None,
        frames: Sequence[Frame],
        people: PeopleSpan,
    ) -> tuple[str, str, float, float, float] | None:
        """Remux, re-encode (people blurred: method ``blur``) or encode the MP4 to ``path``; returns method, codec,
        start, end and the video's first time."""
        start_s, end_s = self._range_of(segment)
        tmp = _temp_beside(path)
        source = _local_file(source_url)
        blur = partial(people.blur, cfg=self.privacy) if self.privacy.people == "blur" and people.has_people else None
        try:
            if source is not None and blur is not None:
                codec, video_start, end_s, _ = reencode(source, tmp, start_s, end_s, blur)
                method = "blur"
            elif source is not None:
                codec, video_start, video_end, _ = remux(source, tmp, start_s, end_s)
                method, end_s = "remux", min(end_s, video_end)  # the post-roll cannot run past the file's end
            else:
                chosen = [f for f in frames if start_s - 1e-6 <= f.pts <= end_s + 1e-6]
                if not chosen:
                    log.warning("clip %s: no source file and no frames to encode; skipped", clip_id)
                    tmp.unlink(missing_ok=True)
                    return None
                codec, video_start = encode(chosen, tmp, blur), chosen[0].pts
                method = "encode" if blur is None else "blur"
                start_s, end_s = chosen[0].pts, chosen[-1].pts
            _fsync_rename(tmp, path, self.store.durable)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return method, codec, min(start_s, video_start), end_s, video_start

    def _record(
        self,
        segment: TrackSegment,
        clip_id: str,
        rel: Path,
        method: str,
        codec: str,
        start_s: float,
        end_s: float,
        video_start: float,
    ) -> ClipRecord:
        """Write the sidecar, then the ``clips`` row and its ClipEvent in one transaction."""
        sidecar = self._sidecar(segment, clip_id, rel, method, codec, start_s, end_s, video_start)
        sidecar_rel = rel.with_suffix(".json")
        atomic_write(self.store.root / sidecar_rel, json.dumps(sidecar, indent=1).encode(), durable=self.store.durable)
        n_labels = sum(1 for f in sidecar["frames"] for lb in f["labels"] if lb["status"] == "accepted")
        start_time, end_time = self._time_of(segment, start_s), self._time_of(segment, end_s)
        size = (self.store.root / rel).stat().st_size + (self.store.root / sidecar_rel).stat().st_size
        event = _clip_event(segment, clip_id, rel, start_time, end_time, n_labels)
        with self.store.manifest.transaction() as db:
            ensure_clips_table(db)
            db.execute(
                "INSERT INTO clips (clip_id, stream, track_id, class_name, path, sidecar, method, codec, start_pts, "
                "end_pts, start_time, end_time, frame_ids, frames, labels, bytes, created, part) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    clip_id, segment.stream, segment.track_id, segment.class_name, str(rel), str(sidecar_rel),
                    method, codec, start_s, end_s, start_time.isoformat(), end_time.isoformat(),
                    json.dumps(list(segment.frame_ids)), len(segment.frame_ids), n_labels, size, utc_iso(),
                    segment.part,
                ),
            )  # fmt: skip
            event_id = enqueue_event(db, event, clip_id=clip_id)
            forget_pending(db, clip_id)
        log.info("clip %s: %s, %.1f-%.1f s, %d labels", clip_id, method, start_s, end_s, n_labels)
        return ClipRecord(
            clip_id, self.store.root / rel, self.store.root / sidecar_rel, method, codec, start_s, end_s,
            len(segment.frame_ids), n_labels, event_id,
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
                "part": segment.part,
                "next_start_pts": segment.next_start_pts,
            },
            "frames": out_frames,
            "tracks": [{"track_id": t, "frame_ids": fids} for t, fids in sorted(tracks.items())],
        }
