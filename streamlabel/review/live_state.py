"""Where the live view reads each stream's state (online, reconnecting, offline, finished).

Inside the daemon the page reads the event sink's latest status events (``sink.statuses()``: what MQTT subscribers
get retained). ``streamlabel review`` runs without the daemon's threads: it asks a daemon's ``/status`` endpoint on
``daemon.metrics_address`` (a daemon running beside it, e.g. with ``review.address: null``), and says the states are
unknown when none answers. The rates come from the manifest either way (``ReviewQueue.live``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 0.5  # a /status answer slower than this counts as none (the page must not wait)
CACHE_S = 4.0  # one /status request serves the page's refreshes for this long


@dataclass
class StreamStates:
    """Each stream's state and where it came from: ``read()`` -> ({stream: {status, detail, since}}, source)."""

    sink: Any = None
    metrics_address: str | None = None
    _cached: tuple[float, dict[str, dict[str, str]], str] = field(default=(-1e9, {}, ""), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read(self) -> tuple[dict[str, dict[str, str]], str]:
        """The states, and the source in words (shown under the page's title)."""
        if self.sink is not None and hasattr(self.sink, "statuses"):
            states = {
                name: {"status": str(e.status), "detail": e.detail, "since": e.time}
                for name, e in self.sink.statuses().items()
            }
            return states, "the daemon"
        if not self.metrics_address:
            return {}, "unknown: no daemon in this process and daemon.metrics_address is null"
        with self._lock:
            when, states, source = self._cached
            if time.monotonic() - when > CACHE_S:
                states, source = self._fetch(self.metrics_address)
                self._cached = (time.monotonic(), states, source)
        return states, source

    @staticmethod
    def _fetch(address: str) -> tuple[dict[str, dict[str, str]], str]:
        from streamlabel.daemon.status import StatusUnavailableError, fetch_status  # the daemon package is heavy

        try:
            answer = fetch_status(address, FETCH_TIMEOUT_S)
        except StatusUnavailableError as exc:
            log.debug("live view: %s", exc)
            return {}, f"unknown: no daemon answers on {address} (daemon.metrics_address)"
        states = {
            name: {"status": str(s.get("status", "?")), "detail": str(s.get("detail", "")), "since": ""}
            for name, s in (answer.get("streams") or {}).items()
        }
        return states, f"the daemon on {address}"
