"""Without an ``mqtt`` section the outbox is drained into ``<store>/events.jsonl``, one payload per line.

Delivery is at-least-once: lines are appended and fsynced, then the rows are marked delivered; a crash between the
two writes the same lines again on the next start (same ``id``), never loses one. Stream status and stats lines
are not outbox rows: they are appended after the rows committed before them.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from streamlabel.events.models import StatsEvent, StatusEvent
from streamlabel.events.sink import BATCH_ROWS, IDLE_POLL_S, SinkThread

if TYPE_CHECKING:
    from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)


class JsonlSink(SinkThread):
    """Appends every outbox row's payload to ``path`` in ``seq`` order."""

    name = "events-jsonl"

    def __init__(self, manifest: Manifest, path: Path) -> None:
        super().__init__(manifest)
        self.path = path
        self._io = threading.RLock()  # one writer of the file at a time: the thread, or a status/stats call

    @property
    def connected(self) -> bool:
        """True while the writer runs (a file needs no connection)."""
        return self._thread is not None and self._thread.is_alive()

    def drain(self) -> int:
        """Write every undelivered row now (in the caller's thread); returns how many were written."""
        total = 0
        with self._io:
            while rows := self.manifest.outbox_pending(0, BATCH_ROWS):
                self._append([r["payload"] for r in rows])
                self.manifest.mark_delivered([r["seq"] for r in rows])
                total += len(rows)
                self.delivered += len(rows)
        return total

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            try:
                written = self.drain()
            except OSError as exc:
                log.error("cannot append to %s: %s; events stay in the outbox", self.path, exc)
                written = 0
                if stopping:
                    return
                self._sleep(1.0)
                continue
            if stopping:
                return
            if not written:
                self._sleep(IDLE_POLL_S)

    def _append(self, lines: list[str]) -> None:
        with self._io, open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())

    def _status_changed(self, event: StatusEvent) -> None:
        self._after_drain(event.model_dump_json())

    def _stats(self, event: StatsEvent) -> None:
        self._after_drain(event.model_dump_json())

    def _after_drain(self, line: str) -> None:
        """Append ``line`` after every row committed so far, so the file reads in the order things happened."""
        with self._io:
            try:
                self.drain()
                self._append([line])
            except OSError as exc:
                log.error("cannot append to %s: %s; events stay in the outbox", self.path, exc)
