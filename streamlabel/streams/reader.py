"""StreamReader: one thread per stream that opens, decodes, samples and queues frames, and reconnects."""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams.clock import StreamClock
from streamlabel.streams.source import SourceError, is_live, iter_sampled, open_container, redact

log = logging.getLogger(__name__)


class StreamStatus(StrEnum):
    """Lifecycle of a stream as the daemon (and the MQTT status topic) sees it."""

    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    FINISHED = "finished"


@dataclass(frozen=True)
class StreamEnd:
    """Queued after a stream's last frame; ``error`` is set when it ended on an error."""

    stream: str
    error: str | None = None


QueueItem = Frame | StreamEnd


END_WAIT_S = 10.0
"""Longest wait for room in a full queue for the end marker while stopping, before a queued frame is dropped."""


class StreamReader(threading.Thread):
    """Reads one source into a bounded queue until stopped.

    A live source drops its oldest queued frame when the queue is full (``dropped`` counts them) and reconnects
    with capped exponential backoff (``streams.<name>.backoff_*``), also after a stall. A file source waits for
    room (back-pressure) so every sampled frame is kept, and finishes at its end unless ``loop`` is set.

    Figures for metrics, updated by the thread: ``status``, ``sampled`` (the next seq: frames queued, plus those a
    resume skipped), ``dropped``, ``reconnects`` (live connections that ended and were retried), ``failed_opens``
    (open attempts that failed), ``last_frame_at`` (``time.monotonic()`` of the last sampled frame, None before
    the first), ``last_error``.
    """

    def __init__(
        self,
        name: str,
        cfg: StreamConfig,
        out: queue.Queue[QueueItem] | None = None,
        on_status: Callable[[str, StreamStatus, str], None] | None = None,
    ) -> None:
        super().__init__(name=f"stream-{name}", daemon=True)
        self.stream = name
        self.cfg = cfg
        self.queue: queue.Queue[QueueItem] = out if out is not None else queue.Queue(cfg.queue_size)
        self.live = is_live(cfg.url)
        self.status = StreamStatus.STARTING
        self.dropped = 0
        self.sampled = 0
        self.reconnects = 0
        self.failed_opens = 0
        self.last_frame_at: float | None = None
        self.last_error: str | None = None
        self.clock = StreamClock()
        self._on_status = on_status
        self._halt = threading.Event()
        self._rng = random.Random()
        self._skip_through = -1

    def resume(self, after_seq: int) -> bool:
        """Start a file after its sampled frame ``after_seq`` (set before ``start``); False for live or looped
        sources, which always start at their current frame.

        The file is still decoded from its start (seq and pts are counted exactly as in a full read, so frame ids
        match), but the frames up to ``after_seq`` are neither converted nor queued.
        """
        if self.live or self.cfg.loop or after_seq < 0:
            return False
        self._skip_through = after_seq
        self.sampled = after_seq + 1
        log.info("stream %s: resuming after sampled frame %d", self.stream, after_seq)
        return True

    def stop(self) -> None:
        """Ask the thread to finish; it ends at the next frame or backoff wait."""
        self._halt.set()

    @property
    def stopping(self) -> bool:
        return self._halt.is_set()

    def _set_status(self, status: StreamStatus, detail: str = "") -> None:
        if status != self.status:
            log.info("stream %s: %s%s", self.stream, status.value, f" ({detail})" if detail else "")
        self.status = status
        if self._on_status is not None:
            self._on_status(self.stream, status, detail)

    def _put(self, item: QueueItem) -> bool:
        """Queue an item; False when stopping. Live sources drop the oldest frame instead of waiting."""
        while not self._halt.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                if self.live and isinstance(item, Frame):
                    try:
                        self.queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        return False

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before open attempt ``attempt + 1`` after ``attempt`` failures in a row (>= 1)."""
        cfg = self.cfg
        delay = min(cfg.backoff_max_s, cfg.backoff_first_s * 2 ** max(0, attempt - 1))
        return delay * (1 + self._rng.uniform(-cfg.backoff_jitter, cfg.backoff_jitter))

    def run(self) -> None:
        attempt = 0
        error: str | None = None
        while not self._halt.is_set():
            try:
                container = open_container(self.cfg.url, self.cfg)
            except SourceError as exc:
                error = self.last_error = str(exc)
                self.failed_opens += 1
                if not self.live:
                    break
                attempt += 1
                self._set_status(StreamStatus.RECONNECTING, error)
                self._halt.wait(self.backoff(attempt))
                continue
            error = None
            self._set_status(StreamStatus.ONLINE)
            before = self.sampled
            try:
                first, skip = (0, self._skip_through) if self._skip_through >= 0 else (self.sampled, -1)
                frames = iter_sampled(
                    self.stream, self.cfg.url, self.cfg, container, first, clock=self.clock, skip_through=skip
                )
                for frame in frames:
                    if not self._put(frame):
                        break
                    self.sampled = frame.seq + 1
                    self.last_frame_at = time.monotonic()
            except SourceError as exc:
                error = self.last_error = str(exc)
                log.warning("stream %s: %s", self.stream, redact(error))
            finally:
                container.close()
                self._skip_through = -1
            if self._halt.is_set():
                break
            if not self.live and (not self.cfg.loop or self.sampled == before):
                # A looped file that gave no frame would loop forever without progress.
                if self.cfg.loop and error is None:
                    error = self.last_error = f"{redact(self.cfg.url)}: no frame decoded; not looping"
                break
            if self.live:
                self.reconnects += 1
                self._set_status(StreamStatus.RECONNECTING, error or "stream ended")
                # A connection that gave frames is retried at once; one that gave none backs off like a failed
                # open, so a camera that accepts and hangs up at once is not hammered.
                attempt = 0 if self.sampled > before else attempt + 1
                if attempt:
                    self._halt.wait(self.backoff(attempt))
        final = StreamStatus.FINISHED if not self.live and error is None else StreamStatus.OFFLINE
        if error:
            log.error("stream %s: %s", self.stream, redact(error))
        self._set_status(final, error or "")
        self._put_end(StreamEnd(self.stream, error))

    def _put_end(self, end: StreamEnd) -> None:
        """Queue the end marker; it must arrive even while stopping, so consumers can tell a stream is done.

        While stopping with a full queue, the daemon's drain is still labeling the queued frames, so the marker
        waits for room for up to ``END_WAIT_S``; only a consumer that stopped reading makes it drop the oldest
        queued frame (counted in ``dropped``).
        """
        waited_since: float | None = None
        while True:
            try:
                self.queue.put(end, timeout=0.2)
                return
            except queue.Full:
                if not self._halt.is_set():
                    continue
                now = time.monotonic()
                waited_since = now if waited_since is None else waited_since
                if now - waited_since >= END_WAIT_S:
                    with contextlib.suppress(queue.Empty):
                        self.queue.get_nowait()
                        self.dropped += 1
                        log.warning(
                            "stream %s: nobody reads the queue; dropped a frame for the end marker", self.stream
                        )
