"""sd_notify: READY, STATUS, WATCHDOG, RELOADING and STOPPING datagrams to systemd's ``$NOTIFY_SOCKET``.

Written here rather than pulling in the systemd python bindings: the protocol is one datagram of
``KEY=VALUE`` lines on a unix socket, and the bindings need a C build against libsystemd.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to systemd; every method is a no-op when the service was not started by systemd.

    ``$NOTIFY_SOCKET`` is a path, or an abstract socket name starting with ``@``. ``$WATCHDOG_USEC`` (and
    ``$WATCHDOG_PID``, when set, naming this process) gives the watchdog interval.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def _target(self) -> str | bytes:
        assert self.address is not None
        if self.address.startswith("@"):
            return b"\0" + self.address[1:].encode()
        return self.address

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; False when not under systemd or the send failed."""
        if self.address is None:
            return False
        data = "\n".join(fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.setblocking(False)  # a listener that stopped reading must never stall the daemon
                self._sock.sendto(data, self._target())
            except OSError as exc:
                if not self._warned:  # once: a missing socket would otherwise flood the log every ping
                    log.warning("sd_notify to %s failed: %s", self.address, exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1: models are loaded and the readers started."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS=...: one line shown by ``systemctl status``."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """WATCHDOG=1: the service is alive and making progress."""
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC, as ``Type=notify-reload`` expects; send ``ready()`` when done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """STOPPING=1: the drain has begun."""
        return self.send("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
