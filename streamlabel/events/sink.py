"""EventSink: what the daemon holds to get the outbox delivered (MQTT publisher or events.jsonl writer)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from streamlabel.events.models import StatsEvent, StatusEvent

if TYPE_CHECKING:
    from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

# How often an idle sink looks at the outbox on its own; wake() makes it look at once. Not a tuning knob:
# committed rows are delivered within this delay even when nobody calls wake().
IDLE_POLL_S = 0.05
# Rows read from the outbox per query.
BATCH_ROWS = 256


class EventSink(Protocol):
    """Delivers the outbox in order; one per daemon."""

    @property
    def connected(self) -> bool: ...

    def start(self) -> None: ...

    def wake(self) -> None: ...

    def stream_status(self, stream: str, status: str, detail: str = "") -> None: ...

    def stats(self, payload: dict[str, Any]) -> None: ...

    def depth(self) -> int: ...

    def stop(self, timeout_s: float) -> None: ...


class SinkThread:
    """The thread, wake-up and stop handling both sinks share; subclasses implement ``_run``."""

    name = "event-sink"

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.delivered = 0  # outbox rows this sink marked delivered
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._statuses: dict[str, StatusEvent] = {}

    def start(self) -> None:
        """Start delivering in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Rows were committed: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def depth(self) -> int:
        """Outbox rows not delivered yet."""
        return self.manifest.outbox_depth()

    def stream_status(self, stream: str, status: str, detail: str = "") -> None:
        """Publish a stream's state (retained on MQTT; the latest one is sent again after a reconnect)."""
        event = StatusEvent(stream=stream, status=status, detail=detail)  # type: ignore[arg-type]
        with self._lock:
            self._statuses[stream] = event
        self._status_changed(event)
        self.wake()

    def statuses(self) -> dict[str, StatusEvent]:
        """The latest state of each stream (the review page's live view shows it)."""
        with self._lock:
            return dict(self._statuses)

    def stats(self, payload: dict[str, Any]) -> None:
        """Publish periodic figures (QoS 0, never stored in the outbox)."""
        self._stats(StatsEvent(**{**payload, "outbox_depth": self.depth()}))
        self.wake()

    def stop(self, timeout_s: float) -> None:
        """Deliver what can be delivered within ``timeout_s``, then say offline and stop."""
        self._deadline = time.monotonic() + timeout_s
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s + 5.0)
            if self._thread.is_alive():
                log.warning("event sink did not stop within %.1f s", timeout_s)
            self._thread = None

    def _sleep(self, seconds: float) -> None:
        """Wait for a wake-up, a stop or ``seconds``."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _main(self) -> None:
        try:
            self._run()
        except Exception:  # a bug must be loud, but must not take the labeling down with it
            log.exception("event sink crashed; events stay in the outbox until the next start")

    def _run(self) -> None:
        raise NotImplementedError

    def _status_changed(self, event: StatusEvent) -> None:
        raise NotImplementedError

    def _stats(self, event: StatsEvent) -> None:
        raise NotImplementedError
