"""How long a validator may wait for one verdict: attempts, per-request timeouts and pauses, within ``max_wait_s``.

systemd's watchdog (``WatchdogSec=3min``) kills a daemon whose threads stop making progress; with the old defaults
(4 attempts of 120 s plus backoff) one hung validator could hold a candidate for over 8 minutes. Every HTTP backend
spends its attempts through a ``WaitBudget``, so a candidate waits at most ``models.validate.max_wait_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from streamlabel.config import ValidateModelConfig
from streamlabel.stages.base import ValidatorUnavailableError

RETRY_BACKOFF_S = 1.0
"""First pause between retries of an unreachable validator; it doubles with every further retry."""


class WaitBudget:
    """The time one candidate may wait for its verdict: every attempt, its timeout and the pauses between them.

    Iterating ``attempts()`` yields the timeout of each attempt: ``timeout_s``, or what is left of ``max_wait_s``
    when that is less. Between attempts it pauses ``backoff_s``, doubling; it stops when ``retries`` are spent or a
    pause would use up the budget. ``unavailable()`` is the error to raise after that.
    """

    def __init__(self, cfg: ValidateModelConfig, backoff_s: float = RETRY_BACKOFF_S) -> None:
        self.cfg, self.backoff_s = cfg, backoff_s
        self.tried = 0
        self._start = time.monotonic()

    def left_s(self) -> float:
        """Seconds of ``max_wait_s`` left."""
        return self.cfg.max_wait_s - (time.monotonic() - self._start)

    def attempts(self) -> Iterator[float]:
        """The timeout of each attempt in turn, pausing between them (see the class)."""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                pause_s = self.backoff_s * 2 ** (attempt - 1)
                if pause_s >= self.left_s():
                    return
                time.sleep(pause_s)
            left_s = self.left_s()
            if left_s <= 0:
                return
            self.tried += 1
            yield min(self.cfg.timeout_s, left_s)

    def unavailable(self, what: str) -> ValidatorUnavailableError:
        """The error once attempts are spent: ``what`` did not answer, after how many tries and how long."""
        waited_s = time.monotonic() - self._start
        return ValidatorUnavailableError(
            f"{what} did not answer after {self.tried} attempt{'s' * (self.tried != 1)} in {waited_s:.1f} s "
            f"(models.validate: timeout_s {self.cfg.timeout_s:g}, retries {self.cfg.retries}, max_wait_s "
            f"{self.cfg.max_wait_s:g}); the candidates stay pending"
        )


class OutageLog:
    """Logs a validator server's failed attempts without flooding: the first failure of an outage as a WARNING
    (saying that more go to DEBUG), the next ones at DEBUG, and the end of the outage once at INFO. The pending
    retry asks an absent server again every few seconds: one line per outage, not one per attempt and round."""

    def __init__(self, logger: logging.Logger, server: str) -> None:
        self.logger, self.server = logger, server
        self.down = False
        self._lock = threading.Lock()

    def failed(self, message: str, *args: Any) -> None:
        with self._lock:
            first, self.down = not self.down, True
        if first:
            self.logger.warning(message + " (further failures are logged at DEBUG until it answers)", *args)
        else:
            self.logger.debug(message, *args)

    def answered(self) -> None:
        with self._lock:
            was_down, self.down = self.down, False
        if was_down:
            self.logger.info("validator server at %s answers again", self.server)
