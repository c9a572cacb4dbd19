"""StreamReader: one thread per stream that opens, decodes, samples and queues frames, and reconnects."""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams.source import SourceError, is_live, iter_sampled, open_container, redact

log = logging.getLogger(__name__)

# Reconnect backoff: first wait, cap, and the jitter fraction that keeps many cameras from retrying in step.
BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 30.0
BACKOFF_JITTER = 0.2


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


class StreamReader(threading.Thread):
    """Reads one source into a bounded queue until stopped.

    A live source drops its oldest queued frame when the queue is full (``dropped`` counts them) and reconnects
    with capped exponential backoff. A file source waits for room (back-pressure) so every sampled frame is kept,
    and finishes at its end unless ``loop`` is set.
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
        self._on_status = on_status
        self._halt = threading.Event()
        self._rng = random.Random()

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

    def _backoff(self, attempt: int) -> float:
        delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** max(0, attempt - 1))
        return delay * (1 + self._rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))

    def run(self) -> None:
        attempt = 0
        error: str | None = None
        while not self._halt.is_set():
            try:
                container = open_container(self.cfg.url, self.cfg)
            except SourceError as exc:
                error = str(exc)
                if not self.live:
                    break
                attempt += 1
                self._set_status(StreamStatus.RECONNECTING, error)
                self._halt.wait(self._backoff(attempt))
                continue
            attempt, error = 0, None
            self._set_status(StreamStatus.ONLINE)
            try:
                for frame in iter_sampled(self.stream, self.cfg.url, self.cfg, container, self.sampled):
                    if not self._put(frame):
                        break
                    self.sampled += 1
            except SourceError as exc:
                error = str(exc)
            finally:
                container.close()
            if self._halt.is_set():
                break
            if not self.live and not self.cfg.loop:
                break
            if self.live:
                self.reconnects += 1
                self._set_status(StreamStatus.RECONNECTING, error or "stream ended")
        final = StreamStatus.FINISHED if not self.live and error is None else StreamStatus.OFFLINE
        if error:
            log.error("stream %s: %s", self.stream, redact(error))
        self._set_status(final, error or "")
        self._put_end(StreamEnd(self.stream, error))

    def _put_end(self, end: StreamEnd) -> None:
        # The end marker must arrive even while stopping, so consumers can tell a stream is done.
        while True:
            try:
                self.queue.put(end, timeout=0.2)
                return
            except queue.Full:
                if self._halt.is_set():
                    with contextlib.suppress(queue.Empty):
                        self.queue.get_nowait()
