"""Supervisor: one reader per stream, restarted behind a crash-loop guard; streams added, removed, replaced live.

A reader that ends with an error (a file that vanished, a decoder that raised) is restarted after a doubling
backoff, at most ``daemon.max_restarts`` times within ``daemon.restart_window_s``; then the stream is marked
offline and left stopped, and the other streams are not touched. Live sources reconnect inside their reader and
never end on their own, so this guard catches what the reader's own reconnect loop cannot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamlabel.config import DaemonConfig, StreamConfig
from streamlabel.redaction import redact
from streamlabel.streams import QueueItem, StreamEnd, StreamReader, StreamStatus
from streamlabel.streams.clock import StreamClock

log = logging.getLogger(__name__)

# Longest wait before a restart, whatever the doubling reached (seconds).
RESTART_BACKOFF_CAP_S = 60.0
# Span of the sampled-fps estimate (seconds) and how often it takes a point.
FPS_WINDOW_S = 10.0
FPS_POINT_S = 1.0

StatusCallback = Callable[[str, StreamStatus, str], None]


class CrashGuard:
    """Allows at most ``max_restarts`` restarts within any ``window_s`` seconds."""

    def __init__(self, max_restarts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_restarts = max_restarts
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    @property
    def recent(self) -> int:
        """Restarts inside the current window."""
        now = self._clock()
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times)

    def allow(self) -> bool:
        """Record a restart and return True, or return False when the window is already full."""
        if self.recent >= self.max_restarts:
            return False
        self._times.append(self._clock())
        return True


class SupervisedReader(StreamReader):
    """A StreamReader whose unexpected exceptions end the stream with an error instead of killing it silently."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any bug in decoding must reach the supervisor, not vanish with the thread
            error = f"reader crashed: {type(exc).__name__}: {redact(str(exc))}"
            log.error("stream %s: %s", self.stream, error)
            self._set_status(StreamStatus.OFFLINE, error)
            self._put_end(StreamEnd(self.stream, error))


@dataclass
class Slot:
    """A configured stream: its queue, current reader, counters carried over restarts and its lifecycle."""

    name: str
    cfg: StreamConfig
    queue: queue.Queue[QueueItem]
    guard: CrashGuard
    reader: StreamReader | None = None
    status: StreamStatus = StreamStatus.STARTING
    detail: str = ""
    restarts: int = 0
    sampled_done: int = 0  # sampled frames when the last reader ended (the next one counts on from there)
    dropped_base: int = 0
    reconnects_base: int = 0
    restart_at: float | None = None
    next_cfg: StreamConfig | None = None
    removing: bool = False
    active: bool = True
    resume_after: int = -1  # a file's first reader starts after this sampled frame (its last stored one)
    fps_points: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=int(FPS_WINDOW_S / FPS_POINT_S)))

    @property
    def sampled(self) -> int:
        return self.reader.sampled if self.reader is not None else self.sampled_done

    @property
    def dropped(self) -> int:
        return self.dropped_base + (self.reader.dropped if self.reader is not None else 0)

    @property
    def reconnects(self) -> int:
        return self.reconnects_base + (self.reader.reconnects if self.reader is not None else 0)

    @property
    def fps(self) -> float:
        """Sampled frames per second over the last few seconds."""
        if len(self.fps_points) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.fps_points[0], self.fps_points[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def state(self) -> dict[str, Any]:
        """Plain data for /status and the stats event."""
        return {
            "status": str(self.status),
            "detail": redact(self.detail),
            "url": redact(self.cfg.url),
            "sampled": self.sampled,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "restarts": self.restarts,
            "fps": round(self.fps, 3),
        }


class Supervisor:
    """Owns the stream slots; the labeler thread reads their queues and reports every StreamEnd it takes.

    Args:
        daemon: the ``daemon`` config section (crash-loop guard and backoff).
        on_status: called with (stream, status, detail) on every status change of any stream.
        restarts: restart crashed streams (the daemon); False lets a stream end on its first error (``label``).
    """

    def __init__(self, daemon: DaemonConfig, on_status: StatusCallback | None = None, restarts: bool = True) -> None:
        self.daemon = daemon
        self.restarts = restarts
        self._on_status = on_status
        self._slots: dict[str, Slot] = {}
        self._seq: dict[str, int] = {}  # next sampled index per stream name: frame ids stay unique over restarts
        self._clocks: dict[str, StreamClock] = {}  # per stream: pts stays monotonic over restarts
        self._lock = threading.RLock()
        self._stopping = False
        self.changed = threading.Event()  # set when a stream was added or restarted, to wake an idle labeler

    # --- lifecycle -------------------------------------------------------------------------------------------

    def add(self, name: str, cfg: StreamConfig, resume_after: int = -1) -> None:
        """Start a stream (or, when it is still draining after a removal, restart it with ``cfg``).

        ``resume_after``: a file (not looped) starts after this sampled frame, e.g. the last one already stored.
        """
        with self._lock:
            slot = self._slots.get(name)
            if slot is not None and slot.active:
                slot.removing = False
                self.replace(name, cfg)
                return
            guard = CrashGuard(self.daemon.max_restarts if self.restarts else 0, self.daemon.restart_window_s)
            slot = Slot(name, cfg, queue.Queue(cfg.queue_size), guard, resume_after=resume_after)
            self._slots[name] = slot
            self._start(slot)

    def remove(self, name: str) -> None:
        """Stop a stream; its queued frames are still labeled, then it is forgotten."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is None:
                return
            if not slot.active or slot.reader is None:
                self._forget(slot)
                return
            slot.removing, slot.next_cfg, slot.restart_at = True, None, None
            slot.reader.stop()

    def replace(self, name: str, cfg: StreamConfig) -> None:
        """Restart a stream with a new config once its queued frames are labeled (frames stay in order)."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or not slot.active:
                self._slots.pop(name, None)
                self.add(name, cfg)
                return
            if slot.reader is None:  # waiting for a crash restart: start it now with the new config
                slot.cfg, slot.restart_at = cfg, None
                self._start(slot)
                return
            slot.next_cfg = cfg
            slot.reader.stop()

    def stop_all(self) -> None:
        """Stop every reader for shutdown: no restarts from now on."""
        with self._lock:
            self._stopping = True
            for slot in self._slots.values():
                slot.next_cfg, slot.restart_at = None, None
                if slot.reader is not None:
                    slot.reader.stop()

    def join(self, timeout_s: float) -> None:
        """Wait for the reader threads to end, ``timeout_s`` in all."""
        end = time.monotonic() + timeout_s
        for slot in self.slots():
            if slot.reader is not None and slot.reader.is_alive():
                slot.reader.join(max(0.0, end - time.monotonic()))

    # --- for the labeler ------------------------------------------------------------------------------------

    def slots(self) -> list[Slot]:
        """Every known stream (active, waiting for a restart, or stopped)."""
        with self._lock:
            return list(self._slots.values())

    def active(self) -> list[Slot]:
        """Streams whose queue the labeler must still read."""
        with self._lock:
            return [s for s in self._slots.values() if s.active]

    def ended(self, slot: Slot, end: StreamEnd) -> None:
        """The labeler took ``end`` from ``slot``'s queue: restart, replace, or retire the stream."""
        with self._lock:
            reader = slot.reader
            if reader is not None:
                self._seq[slot.name] = slot.sampled_done = reader.sampled
                self._clocks[slot.name] = reader.clock
                slot.dropped_base += reader.dropped
                slot.reconnects_base += reader.reconnects
                slot.reader = None
            if self._stopping:
                slot.active = False
            elif slot.removing:
                self._forget(slot)
            elif slot.next_cfg is not None:
                slot.cfg, slot.next_cfg = slot.next_cfg, None
                log.info("stream %s: restarting with its new config", slot.name)
                self._start(slot)
            elif end.error is None:
                slot.active = False  # a file read to its end
            elif slot.guard.allow():
                slot.restarts += 1
                n = slot.guard.recent
                delay = min(RESTART_BACKOFF_CAP_S, self.daemon.restart_backoff_s * 2 ** (n - 1))
                log.warning(
                    "stream %s ended with an error (%s); restart %d of %d in %.1f s",
                    slot.name,
                    redact(end.error),
                    n,
                    slot.guard.max_restarts,
                    delay,
                )
                slot.restart_at = time.monotonic() + delay
            else:
                slot.active = False
                if self.restarts:
                    log.error(
                        "stream %s: crashed %d times within %.0f s; left stopped (offline) until a reload or restart",
                        slot.name,
                        slot.guard.max_restarts + 1,
                        self.daemon.restart_window_s,
                    )
                self._set_status(slot, StreamStatus.OFFLINE, redact(end.error))

    def poll(self) -> None:
        """Start the restarts that are due and take a point for the fps estimate; call it from the labeler loop."""
        now = time.monotonic()
        with self._lock:
            for slot in self._slots.values():
                if slot.restart_at is not None and now >= slot.restart_at and not self._stopping:
                    slot.restart_at = None
                    self._start(slot)
                if not slot.fps_points or now - slot.fps_points[-1][0] >= FPS_POINT_S:
                    slot.fps_points.append((now, slot.sampled))

    # --- internals ------------------------------------------------------------------------------------------

    def _start(self, slot: Slot) -> None:
        if slot.queue.maxsize != slot.cfg.queue_size and slot.queue.empty():
            slot.queue = queue.Queue(slot.cfg.queue_size)
        reader = SupervisedReader(
            slot.name, slot.cfg, out=slot.queue, on_status=lambda _n, st, d: self._reader_status(slot, reader, st, d)
        )
        reader.sampled = self._seq.get(slot.name, 0)
        # A file goes on after the frames already queued (a crash restart) or stored (the first start).
        reader.resume(reader.sampled - 1 if slot.name in self._seq else slot.resume_after)
        if slot.name in self._clocks:
            reader.clock = self._clocks[slot.name]
        slot.reader, slot.active = reader, True
        self._set_status(slot, StreamStatus.STARTING, "")
        reader.start()
        self.changed.set()

    def _reader_status(self, slot: Slot, reader: StreamReader, status: StreamStatus, detail: str) -> None:
        with self._lock:
            if slot.reader is reader:
                self._set_status(slot, status, detail)

    def _set_status(self, slot: Slot, status: StreamStatus, detail: str) -> None:
        if (slot.status, slot.detail) == (status, detail) and status != StreamStatus.STARTING:
            return  # a looping file reports online at every pass: tell listeners only of changes
        slot.status, slot.detail = status, detail
        if self._on_status is not None:
            try:
                self._on_status(slot.name, status, detail)
            except Exception:  # a status listener (sink, metrics) must never stop a reader
                log.exception("stream %s: status listener failed", slot.name)

    def _forget(self, slot: Slot) -> None:
        slot.active = False
        self._slots.pop(slot.name, None)
        self._set_status(slot, StreamStatus.OFFLINE, "removed from the config")
        log.info("stream %s: removed", slot.name)
