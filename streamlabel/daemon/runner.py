"""Runner: stream readers → batched Labeler → store, until the streams end or a stop is asked for.

``streamlabel label`` runs it until every file is read; ``streamlabel run`` until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from streamlabel import __version__
from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.store.dataset import DatasetStore, StoredFrame
from streamlabel.streams import QueueItem, StreamEnd, StreamReader, StreamStatus

log = logging.getLogger(__name__)

# How long the labeler waits to fill a batch before labeling what it has (seconds).
BATCH_WAIT_S = 0.05


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


class Runner:
    """Wires readers, the labeler and the store for one config.

    Frames of all streams share one bounded queue per stream; the labeler thread (the caller's thread in
    ``run_until_done``) takes what is ready from every stream, up to ``models.batch_size`` frames, so frames of
    different streams are batched together and frames of one stream stay in order.
    """

    def __init__(
        self,
        cfg: Config,
        stages: Stages,
        store: DatasetStore,
        on_result: Callable[[FrameResult, StoredFrame | None], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.labeler = Labeler(cfg, stages)
        self.store = store
        self.stats = RunStats()
        self.config_hash = cfg.digest()
        self._on_result = on_result
        self._stop = threading.Event()
        self.readers: dict[str, StreamReader] = {
            name: StreamReader(name, s, on_status=self._status) for name, s in cfg.streams.items() if s.enabled
        }
        store.manifest.record_run(
            self.config_hash,
            cfg.model_dump(mode="json", by_alias=True),
            {"streamlabel": __version__, **stages.model_ids()},
        )

    def _status(self, stream: str, status: StreamStatus, detail: str) -> None:
        # The seam for MQTT status events and metrics (issues 6 and 7).
        log.debug("status %s %s %s", stream, status, detail)

    def stop(self) -> None:
        """Ask every reader to stop; the labeler finishes the frames already queued."""
        self._stop.set()
        for reader in self.readers.values():
            reader.stop()

    def run_until_done(self) -> RunStats:
        """Label until every stream has ended (files) or ``stop()`` was called, then return the counts."""
        for reader in self.readers.values():
            reader.start()
        active = set(self.readers)
        while active:
            batch = self._collect(active)
            if batch:
                self._label(batch)
        for reader in self.readers.values():
            reader.join(timeout=self.cfg.daemon.stop_timeout_s)
        return self.stats

    def _collect(self, active: set[str]) -> list[Frame]:
        """Take up to batch_size frames from the active streams, round-robin, waiting briefly for a full batch."""
        batch: list[Frame] = []
        limit = self.cfg.models.batch_size
        deadline = time.monotonic() + BATCH_WAIT_S
        while active and len(batch) < limit:
            got = False
            for name in list(active):
                item = self._get(self.readers[name].queue)
                if item is None:
                    continue
                got = True
                if isinstance(item, StreamEnd):
                    active.discard(name)
                    self.stats.ended[name] = item.error
                else:
                    batch.append(item)
                if len(batch) >= limit:
                    break
            if not got:
                if batch and time.monotonic() >= deadline:
                    break
                if not batch:
                    deadline = time.monotonic() + BATCH_WAIT_S
                if batch:
                    time.sleep(0.005)
                else:
                    self._wait_any(active)
        return batch

    @staticmethod
    def _get(q: queue.Queue[QueueItem]) -> QueueItem | None:
        try:
            return q.get_nowait()
        except queue.Empty:
            return None

    def _wait_any(self, active: set[str]) -> None:
        """Block briefly until some stream has an item (polling with a short deadline; queues have no select)."""
        end = time.monotonic() + 0.1
        while time.monotonic() < end and not any(not self.readers[n].queue.empty() for n in active):
            time.sleep(0.002)

    def _label(self, batch: list[Frame]) -> None:
        for result in self.labeler.label(batch):
            stored = self.store.write(result, self.config_hash)
            self.stats.add(result, stored)
            if self._on_result is not None:
                self._on_result(result, stored)
