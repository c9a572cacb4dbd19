"""ClipCutter: turns finished track segments into clips while the runner labels.

File streams are remuxed from the file (no frames kept); live streams are encoded from a bounded buffer of their
recent sampled frames (``daemon.clip_buffer_s``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from streamlabel.config import Config
from streamlabel.frames import Frame
from streamlabel.store.clips import ClipWriter
from streamlabel.store.dataset import DatasetStore
from streamlabel.streams import is_live
from streamlabel.tracking.segments import TrackSegment

log = logging.getLogger(__name__)


class ClipCutter:
    """Keeps recent frames of live streams and writes a clip per finished segment (errors are logged, not raised)."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        self.writer = ClipWriter(store, cfg) if cfg.store.clips else None
        self.buffer_s = cfg.daemon.clip_buffer_s
        self.written = 0
        self._frames: dict[str, deque[Frame]] = {}
        self._urls: dict[str, str] = {}

    def remember(self, frame: Frame, url: str) -> None:
        """Note a labeled frame of a stream read from ``url``; live streams keep it for ``buffer_s`` seconds."""
        if self.writer is None:
            return
        self._urls[frame.stream] = url
        if not is_live(url) or self.buffer_s <= 0:
            return
        frames = self._frames.setdefault(frame.stream, deque())
        if frames and frame.pts < frames[-1].pts:  # a reconnect restarted the clock: older frames do not fit
            frames.clear()
        frames.append(frame)
        while frame.pts - frames[0].pts > self.buffer_s:
            frames.popleft()

    def cut(self, segments: Iterable[TrackSegment]) -> int:
        """Write the clips of ``segments``; returns how many were written."""
        if self.writer is None:
            return 0
        n = 0
        for segment in segments:
            url = self._urls.get(segment.stream)
            try:
                record = self.writer.write(segment, url, tuple(self._frames.get(segment.stream, ())))
            except Exception as exc:  # one bad clip (disk, codec) must not stop the labeling
                log.error("clip of %s track %d failed: %s", segment.stream, segment.track_id, exc)
                continue
            if record is not None:
                n += 1
                log.info("clip %s: %d frames, %.1f s", record.clip_id, record.frames, record.end_pts - record.start_pts)
        self.written += n
        return n

    def forget(self, stream: str) -> None:
        """The stream ended: drop its buffered frames."""
        self._frames.pop(stream, None)
