"""ClipCutter: turns finished track segments into clips in its own thread while the runner labels.

File streams are remuxed from the file (no frames kept); live streams are encoded from a bounded buffer of their
recent sampled frames (``daemon.clip_buffer_s``). Encoding takes seconds, so ``cut`` only queues the segment (with
a snapshot of its stream's buffer) for the clip thread: the labeler never waits for an encode. A full queue holds
the labeler up for ``CLIP_QUEUE_WAIT_S`` at most, then that clip is dropped (logged and counted); labels never are.

A stop never waits past its timeout for clips: what is not written by then is left in ``clips_pending`` when it
is cut from a file (``resume`` at the next start cuts it first) and dropped, logged and counted otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from streamlabel.config import Config
from streamlabel.frames import Frame
from streamlabel.store.clip_people import PeopleSpan
from streamlabel.store.clips import ClipWriter, add_pending, pending_clips
from streamlabel.store.dataset import DatasetStore
from streamlabel.streams import is_live
from streamlabel.tracking.segments import TrackSegment

log = logging.getLogger(__name__)

CLIP_QUEUE_SIZE = 16
"""Segments waiting for their clip; each holds a snapshot of its live stream's buffer (references, not copies)."""
CLIP_QUEUE_WAIT_S = 1.0
"""Longest wait of the labeler for room in a full clip queue before that clip is dropped."""
CLIP_STOP_MARGIN_S = 0.5
"""Seconds of ``daemon.stop_timeout_s`` the clip thread leaves to the rest of the stop (sink, store, exit)."""


@dataclass(frozen=True)
class _Job:
    segment: TrackSegment
    url: str | None
    frames: tuple[Frame, ...]
    people: PeopleSpan | None = None  # person boxes of the clip's sampled frames (privacy), taken at the cut


class ClipCutter:
    """Keeps recent frames of live streams and writes a clip per finished segment in a worker thread.

    Errors of one clip are logged, never raised. ``close`` writes what is queued (within a timeout) and ends the
    thread; the store must stay open until it returned True.

    Args:
        store: the open store the clips go to.
        cfg: the configuration (``store.clips``, ``daemon.clip_buffer_s``, ``tracking.clip_*``).
        on_written: called in the clip thread after every clip written.
        on_dropped: called after every clip dropped (full queue, or the stop timeout ran out).
        queue_size: segments that may wait for their clip.
        wait_s: how long ``cut`` waits for room in a full queue before it drops the clip.
    """

    def __init__(
        self,
        store: DatasetStore,
        cfg: Config,
        on_written: Callable[[], None] = lambda: None,
        on_dropped: Callable[[], None] = lambda: None,
        queue_size: int = CLIP_QUEUE_SIZE,
        wait_s: float = CLIP_QUEUE_WAIT_S,
    ) -> None:
        self.writer = ClipWriter(store, cfg) if cfg.store.clips else None
        self.buffer_s = cfg.daemon.clip_buffer_s
        self.wait_s = wait_s
        self.written = 0
        self.dropped = 0
        self.pending = 0  # clips the stop left for the next start
        self._current: _Job | None = None  # the job the clip thread is writing
        self._resumed: list[tuple[TrackSegment, str]] = []  # pending clips of the last stop, cut first
        self._on_written, self._on_dropped = on_written, on_dropped
        self._frames: dict[str, deque[Frame]] = {}
        self._urls: dict[str, str] = {}
        self._jobs: queue.Queue[_Job | None] = queue.Queue(queue_size)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def remember(self, frame: Frame, url: str, loop: bool = False, people_xyxy: np.ndarray | None = None) -> None:
        """Note a labeled frame of a stream read from ``url``; live streams keep it for ``buffer_s`` seconds.

        A looped file is treated as live: its stream times run past the file's end, so its clips are encoded
        from the buffer, not remuxed from the file. ``people_xyxy`` are the detector's person boxes of the frame
        (``FrameResult.people``): clips with a person honour ``privacy.people`` (docs/privacy.md, "Clips").
        """
        if self.writer is None:
            return
        self.writer.people.add(frame.stream, frame.pts, people_xyxy)  # privacy.people in clips (store/clip_people)
        buffered = is_live(url) or loop
        self._urls[frame.stream] = url if not loop else ""
        if not buffered or self.buffer_s <= 0:
            return
        frames = self._frames.setdefault(frame.stream, deque())
        if frames and frame.pts < frames[-1].pts:  # a reconnect restarted the clock: older frames do not fit
            frames.clear()
        frames.append(frame)
        while frame.pts - frames[0].pts > self.buffer_s:
            frames.popleft()

    def cut(self, segments: Iterable[TrackSegment]) -> int:
        """Queue the clips of ``segments`` for the clip thread; returns how many were queued (the rest dropped)."""
        if self.writer is None:
            return 0
        queued = 0
        for segment in segments:
            job = _Job(
                segment,
                self._urls.get(segment.stream) or None,
                tuple(self._frames.get(segment.stream, ())),
                self.writer.people_for(segment),
            )
            self._ensure_thread()
            try:
                self._jobs.put(job, timeout=self.wait_s)
            except queue.Full:
                self._drop(segment, f"the clip queue stayed full for {self.wait_s:g} s (clips encode too slowly)")
                continue
            queued += 1
        return queued

    @property
    def queued(self) -> int:
        """Clips waiting in the queue (approximate while the clip thread runs)."""
        return self._jobs.qsize()

    def forget(self, stream: str) -> None:
        """The stream ended: drop its buffered frames (clips already queued keep their snapshot)."""
        self._frames.pop(stream, None)
        if self.writer is not None:
            self.writer.people.forget(stream)

    def resume(self) -> int:
        """Cut the clips the last stop left pending (file sources), first thing in the clip thread; returns how
        many. Their rows stay until each is written, so a stop that again has no time leaves them for later."""
        if self.writer is None:
            return 0
        self._resumed = pending_clips(self.writer.store)
        count = len(self._resumed)  # the clip thread takes the list over
        if count:
            log.info("%d clip(s) left by the last stop: cut first", count)
            self._ensure_thread()
        return count

    def close(self, timeout_s: float | None = None) -> bool:
        """Write the queued clips, for up to ``timeout_s`` (None: all of them), and end the clip thread.

        Never waits past ``timeout_s``. The clips not written by then are left for the next start when they are
        cut from a local file (a ``clips_pending`` row), else dropped (logged and counted). Returns True when the
        thread ended, False when a clip is still being written (the store must then stay open).
        """
        thread = self._thread
        if thread is None:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):  # else the halt below ends the thread once the queue has room
            self._jobs.put(None, timeout=timeout_s)
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None
            return True
        self._halt.set()  # the clip thread ends after the clip it writes; what is queued is left or dropped
        current = self._current
        if current is not None and current.url and not is_live(current.url):
            self._leave(current)  # if its write still ends before the process, the next start finds it done
        for job in self._drain():
            if job is not None:
                self._leave(job)
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)
        log.warning("a clip is still being written at the stop timeout: it ends with the process")
        return False

    def _drain(self) -> list[_Job | None]:
        out: list[_Job | None] = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._jobs.get_nowait())
        return out

    def _leave(self, job: _Job) -> None:
        """The stop has no time left for ``job``: a pending clip when it can be cut later from its file."""
        assert self.writer is not None
        if job.url and not is_live(job.url):
            try:
                add_pending(self.writer.store, job.segment, job.url, job.people)
            except Exception as exc:  # the store is failing: the clip is lost, the stop goes on
                log.error(
                    "clip of %s track %d could not be left pending: %s", job.segment.stream, job.segment.track_id, exc
                )
            else:
                self.pending += 1
                log.warning("clip of %s track %d (part %d) left for the next start", *_named(job.segment))
                return
        self._drop(job.segment, "the stop timeout ran out (its frames are not kept past the process)")

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="clips", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        resumed, self._resumed = self._resumed, []
        for segment, url in resumed:
            if self._halt.is_set():
                break  # their clips_pending rows stay for the next start
            self._write(_Job(segment, url, ()))
        while (job := self._jobs.get()) is not None:
            if self._halt.is_set():
                self._leave(job)
                continue
            self._current = job
            try:
                self._write(job)
            finally:
                self._current = None
        while not self._jobs.empty():  # after the end marker: nothing can be queued behind it, but be sure
            if (job := self._jobs.get_nowait()) is not None:
                self._drop(job.segment, "the clip thread ended")

    def _write(self, job: _Job) -> None:
        segment = job.segment
        assert self.writer is not None
        try:
            record = self.writer.write(segment, job.url, job.frames, job.people)
        except Exception as exc:  # one bad clip (disk, codec) must not stop the others
            log.error("clip of %s track %d failed: %s", segment.stream, segment.track_id, exc)
            return
        if record is not None:
            self.written += 1
            self._on_written()
            log.info("clip %s: %d frames, %.1f s", record.clip_id, record.frames, record.end_pts - record.start_pts)

    def _drop(self, segment: TrackSegment, why: str) -> None:
        self.dropped += 1
        self._on_dropped()
        log.warning("clip of %s track %d not cut: %s", segment.stream, segment.track_id, why)


def _named(segment: TrackSegment) -> tuple[str, int, int]:
    return segment.stream, segment.track_id, segment.part
