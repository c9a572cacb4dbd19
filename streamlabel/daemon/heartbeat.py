"""Heartbeats of the labeling threads: what the watchdog ping and /healthz go by.

A thread beats when it makes progress. Before a wait whose length is bounded (a validator call with its retries),
it announces that bound, so a slow but bounded answer does not count as a hang; while it waits for another thread
(the labeler loop for the perceive worker), the other thread's heartbeat speaks for it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from streamlabel.config import ValidateModelConfig
from streamlabel.stages.validate import RETRY_BACKOFF_S

# Extra seconds allowed on top of a validator's announced bound (thread scheduling, rendering the views).
VALIDATOR_SLACK_S = 5.0


@dataclass
class Heartbeat:
    """Last sign of life of one thread; ``late_s`` says by how much it missed its deadline (<= 0: on time)."""

    name: str
    at: float = field(default_factory=time.monotonic)
    budget_s: float = 0.0
    idle: bool = False
    waits_for: Heartbeat | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def beat(self, budget_s: float = 0.0, *, idle: bool = False, waits_for: Heartbeat | None = None) -> None:
        """Progress now; the next beat may take ``budget_s`` longer than usual (a bounded wait starts).

        ``idle``: the thread waits for work (it holds nothing up). ``waits_for``: it waits for that thread.
        """
        with self._lock:
            self.at, self.budget_s, self.idle, self.waits_for = time.monotonic(), budget_s, idle, waits_for

    def late_s(self, tolerance_s: float, now: float | None = None) -> float:
        """Seconds past ``tolerance_s`` plus the announced budget since the last beat (negative: on time)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            at, budget_s, idle, other = self.at, self.budget_s, self.idle, self.waits_for
        if idle:
            return -tolerance_s
        if other is not None and other is not self:
            return other.late_s(tolerance_s, now)
        return now - at - tolerance_s - budget_s


def validator_budget_s(cfg: ValidateModelConfig, candidates: int) -> float:
    """Longest time a validator call with ``candidates`` items may take before it counts as hung (seconds).

    A candidate waits at most ``max_wait_s``, or less when every attempt timing out (with the pauses between
    them) ends sooner; requests run ``concurrency`` at a time.
    """
    if candidates <= 0:
        return 0.0
    attempts = cfg.retries + 1
    every_attempt_s = attempts * cfg.timeout_s + RETRY_BACKOFF_S * (2 ** (attempts - 1) - 1)
    rounds = math.ceil(candidates / max(1, cfg.concurrency))
    return rounds * min(cfg.max_wait_s, every_attempt_s) + VALIDATOR_SLACK_S


def most_late(beats: list[Heartbeat], tolerance_s: float) -> tuple[str, float]:
    """The name of the latest of ``beats`` and how late it is (seconds; <= 0 means every thread is on time)."""
    now = time.monotonic()
    worst = max(beats, key=lambda b: b.late_s(tolerance_s, now))
    return worst.name, worst.late_s(tolerance_s, now)
