"""Track segments: the stretch of a stream during which one anchor track was on screen; the store cuts clips of them.

Segments follow anchor tracks, not part tracks: a clip is "the dog on screen", and an eye blinking or turning away
must not cut it into pieces. A segment opens at the first frame its track has an id and closes when the tracker
drops the track (``max_age_s`` without a match) or the stream ends.

A segment is never longer than ``tracking.clip_max_s``: when a track is still matched past it, the piece so far
is closed (its clip is cut at once) and the next piece opens at that frame with the same track id and ``part + 1``.
Consecutive pieces of one track are contiguous: a piece's clip runs to ``next_start_pts``, where the next begins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from streamlabel.frames import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackSegment:
    """One anchor track's time on screen in one stream (pre- and post-roll are the clip writer's business).

    Attributes:
        stream: the stream name.
        track_id: the anchor track id (unique per stream for the life of the process).
        class_name: the anchor's class ("dog").
        start_pts, end_pts: seconds from the stream start of the first and last frame the track was matched in.
        start_time, end_time: UTC capture times of those frames.
        frame_ids: ids of the frames the track was matched in, in order.
        part: 0 for the first piece of a track, then 1, 2, ... for the pieces cut at ``clip_max_s``.
        next_start_pts: where the next piece of the same track starts (None: the track ended with this piece).
    """

    stream: str
    track_id: int
    class_name: str
    start_pts: float
    end_pts: float
    start_time: datetime
    end_time: datetime
    frame_ids: tuple[str, ...]
    part: int = 0
    next_start_pts: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_pts - self.start_pts

    @property
    def continues(self) -> bool:
        """True when the track goes on in a next piece (the clip then ends where that piece starts)."""
        return self.next_start_pts is not None


@dataclass
class _OpenSegment:
    track_id: int
    class_name: str
    first: Frame
    last: Frame
    frame_ids: list[str] = field(default_factory=list)
    part: int = 0

    def close(self, next_start_pts: float | None = None) -> TrackSegment:
        return TrackSegment(
            stream=self.first.stream,
            track_id=self.track_id,
            class_name=self.class_name,
            start_pts=self.first.pts,
            end_pts=self.last.pts,
            start_time=self.first.time,
            end_time=self.last.time,
            frame_ids=tuple(self.frame_ids),
            part=self.part,
            next_start_pts=next_start_pts,
        )


class SegmentBook:
    """Open segments of one stream; ``see`` records a frame's tracks, ``close`` ends the ones no longer tracked.

    Args:
        min_s: segments shorter than this (seconds between first and last frame) are dropped when closed.
        max_s: a segment that would grow past this is closed and the next piece of its track opened (0: unbounded).
    """

    def __init__(self, min_s: float, max_s: float = 0.0) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._open: dict[int, _OpenSegment] = {}
        self._cut: list[TrackSegment] = []  # pieces closed at max_s, returned by the next ``close``

    def see(self, frame: Frame, track_ids: list[int], class_names: list[str]) -> None:
        """Record that the confirmed tracks ``track_ids`` (with their class names) were matched in ``frame``."""
        frame_id = frame.frame_id if track_ids else ""
        for track_id, name in zip(track_ids, class_names, strict=True):
            seg = self._open.get(track_id)
            if seg is not None and self.max_s > 0 and frame.pts - seg.first.pts > self.max_s and seg.last is not frame:
                self._cut.append(seg.close(next_start_pts=frame.pts))
                seg = self._open[track_id] = _OpenSegment(track_id, name, frame, frame, part=seg.part + 1)
            if seg is None:
                seg = self._open[track_id] = _OpenSegment(track_id, name, frame, frame)
            seg.last = frame
            if not seg.frame_ids or seg.frame_ids[-1] != frame_id:
                seg.frame_ids.append(frame_id)

    def close(self, keep: set[int] | None = None) -> list[TrackSegment]:
        """Close every open segment whose track is not in ``keep`` (None closes all); return those long enough."""
        done = [tid for tid in self._open if keep is None or tid not in keep]
        out, self._cut = self._cut, []
        for tid in done:
            opened = self._open.pop(tid)
            seg = opened.close()
            if seg.duration_s >= self.min_s or opened.part > 0:  # the last piece of a long track always counts
                out.append(seg)
            else:
                log.debug("track %s of %s lasted %.2f s: too short for a clip", tid, seg.stream, seg.duration_s)
        return out

    @property
    def open_ids(self) -> set[int]:
        return set(self._open)
