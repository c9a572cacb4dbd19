"""RunStats: the counts of one run (frames, labels by status, stored frames by split), for summaries and status."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from streamlabel.frames import FrameResult
from streamlabel.store.dataset import StoredFrame


@dataclass
class RunStats:
    """Counts of one run, for the summary and progress."""

    frames: int = 0
    anchors: int = 0
    parts: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    stored: Counter[str] = field(default_factory=Counter)
    ended: dict[str, str | None] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    unlabeled: int = 0  # sampled frames still queued when the stop timeout ran out

    def add(self, result: FrameResult, stored: StoredFrame | None) -> None:
        self.frames += 1
        self.anchors += len(result.anchors)
        self.parts += len(result.parts)
        self.labels.update(result.statuses())
        if stored is not None:
            self.stored[stored.split] += 1

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started
