"""``models.student: promoted``: the store's promoted student, followed while the daemon runs.

``streamlabel train --promote`` (and ``train.every_*`` in the daemon) promotes a new run only when it beats the
current one on the gold set (docs/training.md). With ``models.student.model: promoted`` the daemon uses the promoted
run and looks for a newer one every ``check_s`` seconds, before a batch: a newly promoted run is loaded and tried
(a few hundred ms for a YOLO11n-seg) and replaces the old one from that batch on; one that cannot be used is logged
and the old one is kept. Until a run is promoted there is no student (the gate stays open, no scores).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from streamlabel.config.student import StudentConfig
from streamlabel.stages.base import Runtime
from streamlabel.student.model import StudentUnavailableError, UltralyticsFinder, build_finder

log = logging.getLogger(__name__)

PROMOTED = "promoted"


class PromotedFinder:
    """Finds with the store's promoted run; ``find`` returns None while no run is promoted."""

    def __init__(
        self,
        cfg: StudentConfig,
        store_root: Path,
        part: str,
        runtime: Runtime,
        tolerance_px: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg, self.store_root, self.part, self.runtime, self.tolerance_px = (
            cfg,
            store_root,
            part,
            runtime,
            tolerance_px,
        )
        self.clock = clock
        self.run_id: str | None = None
        self.finder: UltralyticsFinder | None = None
        self._checked_s = -math.inf
        self.refresh(at_start=True)

    def find(self, images: Sequence[np.ndarray]) -> list[sv.Detections] | None:
        if self.clock() - self._checked_s >= self.cfg.check_s:
            self.refresh()
        return None if self.finder is None else self.finder.find(images)

    def refresh(self, at_start: bool = False) -> None:
        """Switch to the promoted run when it changed. At start a run that cannot be used raises
        ``StudentUnavailableError``; later it is logged and the current one kept (tried again at the next look)."""
        from streamlabel.train.runs import current_student

        self._checked_s = self.clock()
        run_id = current_student(self.store_root)
        if run_id == self.run_id:
            return
        if run_id is None:  # a promotion withdrawn by hand: keep labeling with what runs
            return
        try:
            finder = build_finder(
                self.cfg.model_copy(update={"model": run_id}),
                self.store_root,
                self.part,
                self.runtime,
                self.tolerance_px,
            )
        except StudentUnavailableError as exc:
            if at_start:
                raise
            log.warning("promoted student %s cannot be used, keeping %s: %s", run_id, self.run_id, exc)
            return
        log.info("student: now the promoted run %s (was %s)", run_id, self.run_id or "none")
        self.run_id, self.finder = run_id, finder
