"""Housekeeping thread of the daemon: judges pending frames again and applies the store's retention limits.

Both run beside the labeler, never in its way: a failure is logged and tried again at the next round. A retry
round asks the validator one frame at a time and looks for a stop between frames, so ``stop`` waits for at most
one (bounded) validator call; the store must stay open until ``join`` says the thread ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from streamlabel.config import Config
from streamlabel.stages.base import Validator
from streamlabel.store.audit import Audits
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.pending import PendingRetry
from streamlabel.store.retention import prune
from streamlabel.train.schedule import scheduler_for

log = logging.getLogger(__name__)

PENDING_RETRY_S = 30.0  # seconds between attempts while the validator is away or nothing is pending
PRUNE_INTERVAL_S = 300.0  # seconds between retention passes (each one walks the manifest)
ROUND_FRAMES = 16  # pending frames judged per round before retention gets its turn


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
        config_path: Path | None = None,
    ) -> None:
        super().__init__(name="housekeeping", daemon=True)
        self.cfg = cfg
        self.store = store
        self.retry = (
            PendingRetry(
                store,
                validator,
                cfg.target.validation.review_threshold,
                cfg.target.part.class_name,
                cfg.target.validation.checks,
            )
            if validator is not None
            else None
        )
        self.on_change = on_change
        self.retry_s, self.prune_s = retry_s, prune_s
        self.judged = 0
        self.pruned_frames = 0
        self._halt = threading.Event()
        # Scheduled student training (train.every_labels / every_s, docs/training.md); None when not configured.
        self.trainer = scheduler_for(cfg, store.manifest, store.root, config_path)
        fraction = cfg.review.audit_fraction  # the audit choice (store/audit.py) is made here, never in a page request
        self.audits = Audits(store.manifest, store.root, fraction, cfg.store.infrared_max_saturation)

    @property
    def prunes(self) -> bool:
        """Whether the config sets any retention limit."""
        s = self.cfg.store
        return s.max_gb is not None or s.max_age_days is not None or s.review_max_age_days is not None

    def halt(self) -> None:
        """Ask the thread to end after the frame it is judging (returns at once)."""
        self._halt.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Halt and wait up to ``timeout_s`` for the thread; True when it ended (the store may be closed)."""
        self.halt()
        if self.trainer is not None:
            self.trainer.stop(timeout_s)
        if self.is_alive():
            self.join(timeout_s)
        if self.is_alive():
            log.warning("housekeeping still busy %.0f s after the stop (a validator call)", timeout_s)
        return not self.is_alive()

    def settle(self) -> int:
        """Judge the pending frames once more, in the caller's thread, after the thread ended (a finished run).

        Stops at the first frame the validator cannot answer. Returns how many frames were judged.
        """
        if self.retry is None or self.is_alive():
            return 0
        before, todo = self.judged, self.retry.pending_count()  # each frame once, even one that stays pending
        while self.judged - before < todo and self._guard("pending retry", lambda: self._retry_round(lambda: False)):
            pass
        return self.judged - before

    def run(self) -> None:
        if self.retry is not None:
            self._guard("pending sweep", self.retry.sweep)
        next_prune = time.monotonic()
        while not self._halt.is_set():
            busy = self.retry is not None and self._guard("pending retry", self._retry_round)
            busy = self._guard("audit selection", self.audits.catch_up) or busy  # a backlog left: go on at once
            if self.trainer is not None:
                self._guard("training schedule", partial(self.trainer.tick, time.time()))
            if self.prunes and time.monotonic() >= next_prune:
                self._guard("retention", self._prune)
                next_prune = time.monotonic() + self.prune_s
            if not busy:
                self._halt.wait(self.retry_s)

    def _retry_round(self, halted: Callable[[], bool] | None = None) -> bool:
        """One round, a frame at a time until ``halted()``; True when frames moved (go on at once), False when
        there is nothing to do now."""
        assert self.retry is not None
        halted = halted or self._halt.is_set
        judged, unavailable, still_pending = 0, False, 0
        moved: Counter[str] = Counter()
        for _ in range(ROUND_FRAMES):
            if halted():
                break
            report = self.retry.retry_once(limit=1)
            judged += report.judged
            moved.update(report.moved)
            still_pending, unavailable = report.still_pending, bool(report.unavailable)
            if not report.judged or unavailable:
                break
        if judged:
            self.judged += judged
            log.info(
                "judged %d pending frame(s) again: %s; %d still pending",
                judged,
                ", ".join(f"{k} {v}" for k, v in sorted(moved.items())),
                still_pending,
            )
            self.on_change()
        return bool(judged) and not unavailable and not halted()

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
