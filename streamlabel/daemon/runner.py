"""Runner: supervised stream readers → batched Labeler → store, until the streams end or a stop is asked for.

``streamlabel label`` runs it until every file is read; ``streamlabel run`` (through ``daemon.service.Daemon``)
until SIGINT/SIGTERM (or, when every stream is a file, until they are read), with crashed streams restarted and
streams added or removed by a reload. A file whose frames are already in the store resumes after its last stored
frame. The loop and the perceive worker beat ``heartbeats`` for the watchdog; clips are cut in their own thread.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from streamlabel import __version__
from streamlabel.config import Config
from streamlabel.daemon.clips import CLIP_STOP_MARGIN_S, ClipCutter
from streamlabel.daemon.heartbeat import Heartbeat, validator_budget_s
from streamlabel.daemon.stats import RunStats
from streamlabel.daemon.supervisor import Slot, Supervisor
from streamlabel.frames import Frame, FrameResult
from streamlabel.pipeline import Labeler, Perceived, Stages
from streamlabel.redaction import redact
from streamlabel.store.dataset import DatasetStore, StoredFrame
from streamlabel.store.manifest import utc_now
from streamlabel.store.tracks_seen import TracksSeen
from streamlabel.streams import QueueItem, StreamEnd, StreamReader, StreamStatus, is_live

if TYPE_CHECKING:
    from streamlabel.daemon.metrics import DaemonMetrics

log = logging.getLogger(__name__)

# How long the labeler waits to fill a batch before labeling what it has (seconds).
BATCH_WAIT_S = 0.05
# How long an idle labeler (no stream to read) sleeps between ticks (seconds); a new stream wakes it at once.
IDLE_WAIT_S = 0.2
# The end of a stop after the drain (clips, events, closing the store, the process exit) gets this much of
# daemon.stop_timeout_s, at most STOP_RESERVE_S: the whole stop fits in the timeout.
STOP_RESERVE_S = 3.0
STOP_RESERVE_SHARE = 0.15
# Stream states that go to the event sink ("starting" is internal: the next state follows within seconds).
PUBLISHED_STATUSES = frozenset(
    {StreamStatus.ONLINE, StreamStatus.RECONNECTING, StreamStatus.OFFLINE, StreamStatus.FINISHED}
)


class Runner:
    """Wires supervised readers, the labeler and the store for one config.

    Each stream has a bounded queue; the labeler loop (the caller's thread in ``run_until_done``) takes what is
    ready from every stream, up to ``models.batch_size`` frames, so frames of different streams are batched
    together and frames of one stream stay in order. With ``models.overlap`` a second thread detects, grounds and
    segments the next batch while the loop validates and stores the current one; batches are still finished (and
    their events queued) in order, and a stream's end is handled after its last batch is stored.

    Args:
        cfg: the configuration.
        stages: the built stages.
        store: the open dataset store.
        on_result: called after every stored (or skipped) frame.
        sink: the event sink (``streamlabel.events.open_sink``); woken after every store write.
        metrics: the daemon's Prometheus metrics, or None.
        service: run as the daemon: restart crashed streams and keep ticking while no stream is active (unless
            ``finite`` is set: then the run ends once every stream has ended, as without ``service``).
    """

    def __init__(
        self,
        cfg: Config,
        stages: Stages,
        store: DatasetStore,
        on_result: Callable[[FrameResult, StoredFrame | None], None] | None = None,
        *,
        sink: Any = None,
        metrics: DaemonMetrics | None = None,
        service: bool = False,
    ) -> None:
        self.cfg = cfg
        self.labeler = Labeler(cfg, stages)
        self.stages = stages
        self.store = store
        self.stats = RunStats()
        self.sink = sink
        self.metrics = metrics
        self.service = service
        self.finite = False
        self.tick = time.monotonic()
        self.heartbeats = {"labeler": Heartbeat("labeler"), "perceive": Heartbeat("perceive", idle=True)}
        self.supervisor = Supervisor(cfg.daemon, on_status=self._status, restarts=service)
        self._on_result = on_result
        self._stopping = False
        self._drain_deadline: float | None = None
        self.stop_deadline: float | None = None  # time.monotonic() by which the whole stop must be over
        self._perceive_s = 0.0  # the last batch's perceive time (written by the perceive worker)
        self._batch_s = 0.0  # what one more batch costs, end to end (``_timed_batch``)
        self._started = False
        self._ended: list[str] = []  # streams whose end was taken from their queue, closed after the batch
        # The batch being perceived (by the worker with models.overlap), finished when the next one starts.
        self._inflight: Future[tuple[Perceived, list[Any]]] | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="perceive") if cfg.models.overlap else None
        self.clips = ClipCutter(store, cfg, on_written=self._clip_written, on_dropped=self._clip_dropped)
        self.clips_closed = True  # False when the clip thread outlived the stop (the store must stay open)
        self.config_hash = self._record(cfg)
        # Track sightings (frames seen and kept per part track), written after each batch: store.tracks_seen.
        self.tracks_seen = TracksSeen(store.manifest, utc_now())
        self.labeler.sifter.record_sightings = True

    def _record(self, cfg: Config) -> str:
        digest = cfg.digest()
        self.store.manifest.record_run(
            digest, cfg.public_dump(), {"streamlabel": __version__, **self.stages.model_ids()}
        )
        return digest

    @property
    def readers(self) -> dict[str, StreamReader]:
        """The current reader of every running stream."""
        return {s.name: s.reader for s in self.supervisor.slots() if s.reader is not None}

    def _status(self, stream: str, status: StreamStatus, detail: str) -> None:
        log.debug("status %s %s %s", stream, status, detail)
        if self.sink is not None and status in PUBLISHED_STATUSES:
            self.sink.stream_status(stream, str(status), redact(detail))

    def start(self) -> None:
        """Start a reader for every enabled stream (``run_until_done`` does it when not done before)."""
        if self._started:
            return
        self._started = True
        self.clips.resume()  # clips the last stop left pending
        for name, s in self.cfg.streams.items():
            if s.enabled:
                self.supervisor.add(name, s, self._resume_after(name, s))

    def _resume_after(self, name: str, s: Any) -> int:
        """The sampled index a file stream resumes after: its last stored frame (-1: from the start)."""
        if is_live(s.url) or s.loop:
            return -1
        last = self.store.last_frame(name)
        if last is None:
            return -1
        log.info("stream %s: frames up to %d (%.1f s) are stored already; resuming after them", name, *last)
        return last[0]

    def reconfigure(self, cfg: Config, added: dict[str, Any], removed: list[str], changed: dict[str, Any]) -> None:
        """Switch to ``cfg`` (same models and target) and start, stop or restart the streams named."""
        self.config_hash = self._record(cfg)
        self.cfg = cfg
        for name in removed:
            self.supervisor.remove(name)
        for name, s in changed.items():
            self.supervisor.replace(name, s)
        for name, s in added.items():
            self.supervisor.add(name, s, self._resume_after(name, s))

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop every reader; the labeler labels the frames already queued for up to ``timeout_s``, then ends."""
        if self._stopping:
            return
        self._stopping = True
        wait_s = timeout_s if timeout_s is not None else self.cfg.daemon.stop_timeout_s
        now = time.monotonic()
        self.stop_deadline = now + wait_s
        self._drain_deadline = now + wait_s - min(STOP_RESERVE_S, STOP_RESERVE_SHARE * wait_s)
        self.supervisor.stop_all()
        self.supervisor.changed.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def drain_deadline(self) -> float | None:
        """``time.monotonic()`` by which the drain ends (None until ``stop()``)."""
        return self._drain_deadline

    def run_until_done(self) -> RunStats:
        """Label until every stream has ended (``label``) or ``stop()`` was called, then return the counts."""
        self.start()
        while True:
            self.tick = time.monotonic()
            self.heartbeats["labeler"].beat()
            self.supervisor.poll()
            slots = self.supervisor.active()
            if self._drain_deadline is not None and self.tick + self._batch_s >= self._drain_deadline:
                self._abandon(slots)  # no time for one more batch (the one in flight is finished below)
                break
            if not slots:
                if self._stopping or not self.service or self.finite:
                    break
                self.supervisor.changed.wait(IDLE_WAIT_S)
                self.supervisor.changed.clear()
                continue
            batch = self._collect(slots)
            if batch:
                self._submit(batch)
            if not batch or self._ended:
                self._flush()  # idle, or a stream ended: its last frames must be stored before its tracks close
            self._close_ended()
        self._flush()
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        self.heartbeats["labeler"].beat()
        # Clip work never runs past the drain (less the end of the stop): what does not fit is left pending for the
        # next start, or dropped.
        left_s = None if self._drain_deadline is None else self._drain_deadline - time.monotonic() - CLIP_STOP_MARGIN_S
        left_s = None if left_s is None else max(0.0, left_s)
        self.clips_closed = self.clips.close(left_s)
        self.supervisor.join(max(1.0, (self._drain_deadline or time.monotonic()) - time.monotonic()))
        return self.stats

    def _abandon(self, slots: list[Slot]) -> None:
        """The stop timeout ran out: count and drop the frames nobody will label."""
        left = 0
        for slot in slots:
            while (item := self._get(slot.queue)) is not None:
                left += isinstance(item, Frame)
        self.stats.unlabeled += left
        if left:
            log.warning("stop timeout reached: %d sampled frame(s) were not labeled", left)

    def _collect(self, slots: list[Slot]) -> list[Frame]:
        """Take up to batch_size frames from the active streams, round-robin, waiting briefly for a full batch."""
        batch: list[Frame] = []
        limit = self.cfg.models.batch_size
        deadline = time.monotonic() + BATCH_WAIT_S
        active = list(slots)
        while active and len(batch) < limit:
            got = False
            for slot in list(active):
                item = self._get(slot.queue)
                if item is None:
                    continue
                got = True
                if isinstance(item, StreamEnd):
                    active.remove(slot)
                    self._ended.append(slot.name)
                    self.supervisor.ended(slot, item)
                    if not slot.active:
                        self.stats.ended[slot.name] = item.error
                else:
                    batch.append(item)
                if len(batch) >= limit:
                    break
            if got:
                continue
            if batch:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.005)
            else:
                if not self._wait_any(active):
                    break  # nothing arrived: give the loop a tick
                deadline = time.monotonic() + BATCH_WAIT_S
        return batch

    @staticmethod
    def _get(q: queue.Queue[QueueItem]) -> QueueItem | None:
        try:
            return q.get_nowait()
        except queue.Empty:
            return None

    def _wait_any(self, active: list[Slot]) -> bool:
        """Block briefly until some stream has an item (polling with a short deadline; queues have no select)."""
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            if any(not s.queue.empty() for s in active):
                return True
            time.sleep(0.002)
        return False

    def _submit(self, batch: list[Frame]) -> None:
        """With ``models.overlap``: start perceiving ``batch`` in the worker, then finish the batch before it.
        Without: perceive and finish ``batch`` here and now."""
        if self._worker is None:
            self._finish(*self._perceive(batch))
            return
        previous, self._inflight = self._inflight, self._worker.submit(self._perceive_in_worker, batch)
        if previous is not None:
            self._finish(*self._result(previous))  # an error of the stages surfaces here, in the labeler thread

    def _flush(self) -> None:
        """Finish the batch in flight, if any."""
        previous, self._inflight = self._inflight, None
        if previous is not None:
            self._finish(*self._result(previous))

    def _result(self, inflight: Future[tuple[Perceived, list[Any]]]) -> tuple[Perceived, list[Any]]:
        """Wait for the perceive worker; meanwhile its heartbeat speaks for the loop's."""
        self.heartbeats["labeler"].beat(waits_for=self.heartbeats["perceive"])
        try:
            return inflight.result()
        finally:
            self.heartbeats["labeler"].beat()

    def _perceive(self, batch: list[Frame]) -> tuple[Perceived, list[Any]]:
        # Segments that ended by this batch: their frames are in it or earlier, stored before they are cut.
        start = time.perf_counter()
        try:
            return self.labeler.perceive(batch), self.labeler.finished_segments()
        finally:
            self._perceive_s = time.perf_counter() - start

    def _timed_batch(self, finish_s: float) -> None:
        """Keep ``_batch_s``, what one more batch costs (perceive + judge + store): up at once, down slowly, so a
        stop does not start a batch it has no time to finish."""
        took = self._perceive_s + finish_s
        self._batch_s = took if took > self._batch_s else 0.8 * self._batch_s + 0.2 * took

    def _perceive_in_worker(self, batch: list[Frame]) -> tuple[Perceived, list[Any]]:
        self.heartbeats["perceive"].beat()
        try:
            return self._perceive(batch)
        finally:
            self.heartbeats["perceive"].beat(idle=True)

    def _finish(self, perceived: Perceived, segments: list[Any]) -> None:
        """Judge, store and publish a perceived batch, then cut the clips of the segments that ended with it."""
        if self.stages.validator is not None:  # a validator call waits on I/O for up to its bounded budget
            parts = sum(len(r.parts) for r in perceived.results)
            self.heartbeats["labeler"].beat(validator_budget_s(self.cfg.models.validate_, parts))
        start = time.perf_counter()
        results = self.labeler.judge(perceived)
        self.heartbeats["labeler"].beat()
        if self.metrics is not None:
            self.metrics.observe_batch(perceived.times)
        self.commit(results, segments, self.labeler.take_sightings())
        self._timed_batch(time.perf_counter() - start)

    def sift_counts(self) -> dict[str, dict[str, int]]:
        """The novelty gate's and the daily budget's counts per stream (``Labeler.sift_counts``)."""
        return self.labeler.sift_counts()

    def commit(self, results: list[FrameResult], segments: list[Any], sightings: list[Any]) -> None:
        """Store and publish judged results in order, then cut the clips of the segments that ended with them
        (also called by the cluster driver with what its labeler actors judged)."""
        for result in results:
            try:
                stored = self.store.write(result, self.config_hash)
            except sqlite3.IntegrityError as exc:  # a frame id seen before (a file re-read): skip it, keep going
                log.error("frame %s not stored: %s", result.frame.frame_id, exc)
                if self.metrics is not None:
                    self.metrics.store_errors.inc()
                continue
            if stored is not None and self.sink is not None:
                self.sink.wake()
            self.stats.add(result, stored)
            if self.metrics is not None:
                self.metrics.observe_result(result, stored)
            if self._on_result is not None:
                self._on_result(result, stored)
        self.tracks_seen.write(sightings)  # one transaction per batch
        sources = {s.name: s.cfg for s in self.supervisor.slots()}
        for r in results:  # with the detector's person boxes: privacy in clips
            if r.frame.stream in sources:
                self.clips.remember(r.frame, sources[r.frame.stream].url, sources[r.frame.stream].loop, r.people.xyxy)
        self._cut(segments)

    def _close_ended(self) -> None:
        """Close the tracks of streams that ended (after their last frames were labeled) and cut their clips."""
        while self._ended:
            name = self._ended.pop(0)
            self._cut(self.labeler.end_stream(name))
            self.clips.forget(name)

    def _cut(self, segments: list[Any]) -> None:
        if segments:
            self.clips.cut(segments)

    def _clip_written(self) -> None:
        if self.metrics is not None:
            self.metrics.clips.inc()

    def _clip_dropped(self) -> None:
        if self.metrics is not None:
            self.metrics.clips_dropped.inc()
