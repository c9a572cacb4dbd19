"""The driver's book of streams and labelers: what each has in flight, where it runs, how often it restarted.

``StreamSlots`` stands in for the in-process ``Supervisor`` towards the daemon (``slots()``, ``active()``,
``stop_all()``, ``join()``, ``changed``), so ``streamlabel status``, ``/metrics`` and the stats event read the
cluster's streams the same way.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streamlabel.config import StreamConfig
from streamlabel.redaction import redact
from streamlabel.streams import StreamStatus, is_live


@dataclass
class StreamSlot:
    """One stream on the cluster: its reader actor, its labeler, its position and its figures."""

    name: str
    cfg: StreamConfig
    resources: dict[str, float]
    committed_seq: int = -1
    """Last sampled index stored (or judged and not kept): a new reader of a file resumes after it."""
    last: tuple[float, datetime] | None = None
    """``(pts, time)`` of the last committed frame: a camera's new reader continues its clock from it."""
    status: StreamStatus = StreamStatus.STARTING
    detail: str = ""
    reader: Any = None
    take: tuple[Any, Any] | None = None
    """The outstanding ``take`` call: (info ref, items ref)."""
    reading: bool = True
    labeler: int | None = None
    epoch: int = 0
    in_flight: int = 0
    restarts: int = 0
    missed: int = 0
    sampled: int = 0
    dropped: int = 0
    reconnects: int = 0
    queued: int = 0
    node: str = ""
    active: bool = True
    bases: dict[str, int] = field(default_factory=lambda: {"dropped": 0, "reconnects": 0})

    @property
    def live(self) -> bool:
        return is_live(self.cfg.url) or self.cfg.loop

    def new_reader(self) -> None:
        """Forget the reader's figures (kept as bases) before a new reader starts counting from zero."""
        self.bases["dropped"] = self.dropped
        self.bases["reconnects"] = self.reconnects
        self.reader, self.take, self.reading = None, None, True

    def figures(self, info: Any) -> None:
        """Take the reader's figures from a ``TakeInfo``."""
        self.sampled = max(self.sampled, info.sampled)
        self.dropped = self.bases["dropped"] + info.dropped
        self.reconnects = self.bases["reconnects"] + info.reconnects
        self.queued, self.node = info.queued, info.node

    def state(self) -> dict[str, Any]:
        """Plain data for /status and the stats event (the in-process keys plus the cluster's)."""
        return {
            "status": str(self.status),
            "detail": redact(self.detail),
            "url": redact(self.cfg.url),
            "sampled": self.sampled,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "restarts": self.restarts,
            "fps": 0.0,
            "in_flight": self.in_flight,
            "queue_depth": self.queued,
            "missed": self.missed,
            "labeler": self.labeler,
            "node": self.node,
        }


@dataclass
class Call:
    """One ``label`` call in flight: its result ref and, per take, (stream slot, its epoch, the frames' seqs, the
    stream's end marker or None)."""

    ref: Any
    takes: list[tuple[StreamSlot, int, list[int], Any]]


@dataclass
class LabelerSlot:
    """One labeler actor (or its replacement) and the calls it has been given, oldest first."""

    index: int
    handle: Any = None
    ready: Any = None
    """The ping ref of an actor that has not answered yet."""
    alive: bool = False
    restarts: int = 0
    node: str = ""
    started_at: float = 0.0
    calls: deque[Call] = field(default_factory=deque)
    frames: int = 0

    def state(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "node": self.node,
            "calls_in_flight": len(self.calls),
            "frames_in_flight": sum(len(t[2]) for c in self.calls for t in c.takes),
            "frames": self.frames,
            "restarts": self.restarts,
        }


class StreamSlots:
    """The cluster's streams, in the shape the daemon reads from its ``Supervisor``."""

    def __init__(self) -> None:
        self._slots: dict[str, StreamSlot] = {}
        self.stopping = False
        self.changed = threading.Event()

    def add(self, slot: StreamSlot) -> None:
        self._slots[slot.name] = slot
        self.changed.set()

    def remove(self, name: str) -> StreamSlot | None:
        """Forget a stream (a reload removed or changed it); its slot, or None when there was none."""
        slot = self._slots.pop(name, None)
        self.changed.set()
        return slot

    def slots(self) -> list[StreamSlot]:
        return list(self._slots.values())

    def active(self) -> list[StreamSlot]:
        return [s for s in self._slots.values() if s.active]

    def stop_all(self) -> None:
        """No new frames from now on; what is in flight is still stored."""
        self.stopping = True

    def join(self, timeout_s: float) -> None:
        """Readers are actors, ended by the driver; nothing to join here."""

    def poll(self) -> None:
        """Nothing due: restarts happen when a failure is seen."""
