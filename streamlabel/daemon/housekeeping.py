"""Housekeeping thread of the daemon: judges pending frames again and applies the store's retention limits.

Both run beside the labeler, never in its way: a failure is logged and tried again at the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from streamlabel.config import Config
from streamlabel.stages.base import Validator
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.pending import PendingRetry
from streamlabel.store.retention import prune

log = logging.getLogger(__name__)

PENDING_RETRY_S = 30.0  # seconds between attempts while the validator is away or nothing is pending
PRUNE_INTERVAL_S = 300.0  # seconds between retention passes (each one walks the manifest)


class Housekeeper(threading.Thread):
    """Every ``PENDING_RETRY_S``: re-validate pending frames; every ``PRUNE_INTERVAL_S``: prune the store."""

    def __init__(
        self,
        cfg: Config,
        store: DatasetStore,
        validator: Validator | None,
        on_change: Callable[[], None] = lambda: None,
        retry_s: float = PENDING_RETRY_S,
        prune_s: float = PRUNE_INTERVAL_S,
    ) -> None:
        super().__init__(name="housekeeping", daemon=True)
        self.cfg = cfg
        self.store = store
        self.retry = (
            PendingRetry(store, validator, cfg.target.validation.review_threshold, cfg.target.part.class_name)
            if validator is not None
            else None
        )
        self.on_change = on_change
        self.retry_s, self.prune_s = retry_s, prune_s
        self.judged = 0
        self.pruned_frames = 0
        self._halt = threading.Event()

    @property
    def prunes(self) -> bool:
        """Whether the config sets any retention limit."""
        return self.cfg.store.max_gb is not None or self.cfg.store.max_age_days is not None

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        if self.retry is not None:
            self._guard("pending sweep", self.retry.sweep)
        next_prune = time.monotonic()
        while not self._halt.is_set():
            busy = self.retry is not None and self._guard("pending retry", self._retry_round)
            if self.prunes and time.monotonic() >= next_prune:
                self._guard("retention", self._prune)
                next_prune = time.monotonic() + self.prune_s
            if not busy:
                self._halt.wait(self.retry_s)

    def _retry_round(self) -> bool:
        """One round; True when frames moved (go on at once), False when there is nothing to do now."""
        assert self.retry is not None
        report = self.retry.retry_once()
        if report.judged:
            self.judged += report.judged
            log.info(
                "judged %d pending frame(s) again: %s; %d still pending",
                report.judged,
                ", ".join(f"{k} {v}" for k, v in sorted(report.moved.items())),
                report.still_pending,
            )
            self.on_change()
        return bool(report.judged) and not report.unavailable

    def _prune(self) -> None:
        report = prune(self.store, self.cfg)
        if report.freed:
            self.pruned_frames += sum(report.frames.values())
            log.info("retention: %s", report.summary())
        if report.over_limit:
            log.warning("retention: still above store.max_gb; what is left is pending, undelivered or protected")

    def _guard(self, what: str, fn: Callable[[], object]) -> bool:
        try:
            return bool(fn())
        except Exception:
            log.exception("%s failed; trying again later", what)
            return False
