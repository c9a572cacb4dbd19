"""ClusterRunner: the daemon's runner when ``cluster:`` is configured; the daemon process is the Ray driver.

Readers (one actor per stream, placed by ``cluster.streams.<name>.resources``) hand out sampled frames; the driver
passes each take's object ref, unfetched, to the stream's labeler actor (a stream sticks to one labeler; takes of
several streams that are ready together go in one call, so a labeler batches across its streams); the labeler
returns judged ``FrameResult``s, which the driver stores and publishes through ``Runner.commit``, each stream in
``seq`` order. The driver is the only writer of the store and the outbox.

Failures: a reader or labeler that dies (its node died, or it was killed) restarts its streams: the frames in
flight are discarded (their outputs are ignored by epoch), their tracks are reset, a file's new reader resumes after
its last committed frame and a camera's counts the frames in flight as ``missed``; a dead labeler is replaced (at
most ``cluster.max_restarts`` times) and its streams move to a live one. A frame is stored at most once: the
driver skips seqs it committed, and the store skips frame ids it has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import ray

from streamlabel.cluster import engine
from streamlabel.cluster.actors import StagesFactory
from streamlabel.cluster.flow import FlowMixin, Sends
from streamlabel.cluster.metrics import ClusterCollector, cluster_state
from streamlabel.cluster.slots import LabelerSlot, StreamSlot, StreamSlots
from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.pipeline import Stages
from streamlabel.store.dataset import DatasetStore
from streamlabel.streams import StreamStatus

log = logging.getLogger(__name__)

# Longest wait of a reader's ``take`` for its first frame (seconds): short, so a stopping driver is not held up.
TAKE_WAIT_S = 0.2
# Longest wait of the driver loop for any ref (seconds): it also beats the watchdog heartbeat.
LOOP_WAIT_S = 0.5


class ClusterRunner(FlowMixin, Runner):
    """``Runner`` with the readers and the labeling on Ray actors; storing, events and clips stay here.

    Args are those of ``Runner`` plus ``stages_factory``: how a labeler actor builds its stages from the config
    (default: load the configured models on the actor's node).
    """

    def __init__(self, cfg: Config, stages: Stages, store: DatasetStore, *args: Any, **kwargs: Any) -> None:
        self.stages_factory: StagesFactory | None = kwargs.pop("stages_factory", None)
        if cfg.cluster is None:
            raise ValueError("ClusterRunner needs a `cluster:` section in the config (docs/cluster.md)")
        super().__init__(cfg, stages, store, *args, **kwargs)
        self.cluster = cfg.cluster
        self.supervisor = StreamSlots()  # type: ignore[assignment]  # the daemon reads it like a Supervisor
        self.labelers: list[LabelerSlot] = []
        self._owns_ray = False
        self._spread = False  # streams were first assigned (once every labeler answered, or the ping timeout)
        self.sift_totals: dict[str, Counter[str]] = {}  # per stream, the labeler actors' gate and budget counts
        self._reconfigs: list[tuple[Config, dict[str, Any], list[str], dict[str, Any]]] = []  # reloads to apply
        self._reconfig_lock = threading.Lock()  # reconfigure() is called from the service's main thread
        if self.metrics is not None:
            self.metrics.registry.register(ClusterCollector(self))

    def sift_counts(self) -> dict[str, dict[str, int]]:
        """The novelty gate's and the daily budget's counts per stream, added up over the labeler actors."""
        return {stream: dict(counts) for stream, counts in self.sift_totals.items()}

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Join the cluster, start the labelers (they load their models) and a reader per enabled stream."""
        if self._started:
            return
        self._started = True
        self._owns_ray = engine.connect(self.cluster)
        self.clips.resume()
        self.labelers = [LabelerSlot(i) for i in range(self.cluster.labelers)]
        for lab in self.labelers:
            self._start_labeler(lab)
        for name, s in self.cfg.streams.items():
            if s.enabled:
                self._add_stream(name, s)
        unknown = set(self.cluster.streams) - set(self.cfg.streams)
        if unknown:
            log.warning("cluster.streams names streams that are not configured: %s", ", ".join(sorted(unknown)))

    def reconfigure(self, cfg: Config, added: dict[str, Any], removed: list[str], changed: dict[str, Any]) -> None:
        """Queue a reload's stream changes; the driver loop applies them between two turns (the slots are its own).

        Removed and changed streams stop at once: their frames in flight are dropped (a file re-reads them when it
        comes back), their tracks reset; a changed or added stream starts a new reader (a file resumes after its
        last stored frame). The cluster section itself needs a restart, as the models do.
        """
        with self._reconfig_lock:
            self._reconfigs.append((cfg, dict(added), list(removed), dict(changed)))
        self.supervisor.changed.set()

    def _apply_reconfigs(self) -> None:
        with self._reconfig_lock:
            todo, self._reconfigs = self._reconfigs, []
        for cfg, added, removed, changed in todo:
            self.config_hash = self._record(cfg)
            self.cfg = cfg
            for name in [*removed, *changed]:
                self._remove_stream(name)
            for name, s in {**changed, **added}.items():
                self._add_stream(name, s)
            log.info("reload: streams added %s, changed %s, removed %s", sorted(added), sorted(changed), removed)

    def _add_stream(self, name: str, s: Any) -> None:
        placement = self.cluster.streams.get(name)
        slot = StreamSlot(name, s, dict(placement.resources) if placement else {})
        slot.committed_seq = self._resume_after(name, s)
        self.supervisor.add(slot)
        self._start_reader(slot)

    def _remove_stream(self, name: str) -> None:
        slot = self.supervisor.remove(name)
        if slot is None:
            return
        slot.epoch += 1  # answers still in flight for it are dropped
        slot.active, slot.in_flight = False, 0
        self._stop_reader(slot)
        if slot.labeler is not None and self.labelers[slot.labeler].alive:
            self.labelers[slot.labeler].handle.reset.remote(name)
        self.clips.forget(name)
        self._reader_status(slot, StreamStatus.OFFLINE, "removed from the config")

    def run_until_done(self) -> Any:
        """Label until every stream has ended (files) or ``stop()`` was called and the frames in flight are stored."""
        self.start()
        try:
            while self._step():
                pass
        finally:
            self._shutdown()
        return self.stats

    def _step(self) -> bool:
        """One turn of the loop; False when the run is over."""
        self.tick = time.monotonic()
        if self._reconfigs:
            self._apply_reconfigs()
        self.heartbeats["labeler"].beat()
        if self._drain_deadline is not None and self.tick >= self._drain_deadline:
            self._abandon_in_flight()
            return False
        busy = any(lab.calls for lab in self.labelers)
        streams = self.supervisor.active()
        if not streams and not busy:
            if self._stopping or not self.service or self.finite:
                return False
            self.supervisor.changed.wait(0.2)
            self.supervisor.changed.clear()
            return True
        if self._stopping:
            self._retire(streams)
        self._ask(streams)
        self._pump()
        return True

    def _retire(self, streams: list[StreamSlot]) -> None:
        """While stopping: a stream with nothing in flight is done (its queued frames stay unread)."""
        for slot in streams:
            if slot.take is None and slot.in_flight == 0:
                slot.active = False
                self._stop_reader(slot)

    def _shutdown(self) -> None:
        for slot in self.supervisor.slots():
            self._stop_reader(slot)
        for lab in self.labelers:
            engine.kill(lab.handle)
        self.heartbeats["labeler"].beat()
        self.clips_closed = self.clips.close(None if self._drain_deadline is None else 5.0)
        if self._owns_ray:
            ray.shutdown()

    def _abandon_in_flight(self) -> None:
        left = sum(s.in_flight for s in self.supervisor.slots())
        self.stats.unlabeled += left
        if left:
            log.warning("stop timeout reached: %d sampled frame(s) in flight were not stored", left)

    def cluster_state(self) -> dict[str, Any]:
        """Labelers and actors per node, for ``streamlabel status``."""
        return cluster_state(self)

    # --- actors -------------------------------------------------------------------------------------------------

    def _start_labeler(self, lab: LabelerSlot) -> None:
        lab.handle = engine.start_labeler(self.cfg, self.stages_factory)
        lab.ready, lab.alive, lab.started_at = lab.handle.ping.remote(), False, time.monotonic()

    def _start_reader(self, slot: StreamSlot) -> None:
        slot.new_reader()
        clock_from = None
        if slot.live and slot.last is not None:
            clock_from = (slot.committed_seq + 1, *slot.last)
        resume = -1 if slot.live else slot.committed_seq
        slot.reader = engine.start_reader(slot.name, slot.cfg, slot.resources, self.cluster, resume, clock_from)
        if slot.labeler is None or not self.labelers[slot.labeler].alive:
            slot.labeler = self._pick_labeler()

    def _stop_reader(self, slot: StreamSlot) -> None:
        if slot.reader is not None:
            slot.reader.stop.remote()
            engine.kill(slot.reader)
            slot.reader, slot.take = None, None

    def _pick_labeler(self) -> int | None:
        """The live labeler with the fewest active streams; None while none has answered its ping, and at the start
        while some labeler is still loading its models (for up to ``ping_timeout_s``), so streams spread evenly."""
        alive = [lab.index for lab in self.labelers if lab.alive]
        if not alive:
            return None
        if not self._spread:
            loading = [lab for lab in self.labelers if lab.ready is not None]
            if loading and time.monotonic() - min(lab.started_at for lab in loading) < self.cluster.ping_timeout_s:
                return None
            self._spread = True
        load = {i: 0 for i in alive}
        for s in self.supervisor.active():
            if s.labeler in load:
                load[s.labeler] += 1
        return min(alive, key=lambda i: (load[i], i))

    # --- the loop -----------------------------------------------------------------------------------------------

    def _ask(self, streams: list[StreamSlot]) -> None:
        """Ask every reader with room in flight (and a labeler to send to) for its next frames."""
        limit = self.cfg.models.batch_size
        for slot in streams:
            room = self.cluster.frames_in_flight - slot.in_flight
            if self._stopping or slot.take is not None or not slot.reading or slot.reader is None or room <= 0:
                continue
            if slot.labeler is None:
                slot.labeler = self._pick_labeler()
                if slot.labeler is None:
                    continue
            slot.take = tuple(slot.reader.take.options(num_returns=2).remote(min(limit, room), TAKE_WAIT_S))

    def _pump(self) -> None:
        """Wait briefly for takes, labeler answers and pings; handle what is ready, then send the takes on."""
        refs: dict[Any, tuple[str, Any]] = {}
        for slot in self.supervisor.active():
            if slot.take is not None:
                refs[slot.take[0]] = ("take", slot)
        for lab in self.labelers:
            if lab.calls:
                refs[lab.calls[0].ref] = ("call", lab)
            if lab.ready is not None:
                refs[lab.ready] = ("ping", lab)
        if not refs:
            time.sleep(0.05)
            return
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=LOOP_WAIT_S, fetch_local=False)
        if ready:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0, fetch_local=False)
        sends: Sends = {}
        for ref in ready:
            kind, owner = refs[ref]
            if kind == "take":
                self._took(owner, sends)
            elif kind == "call":
                self._answered(owner)
            else:
                self._pinged(owner)
        self._check_pings()
        self._send(sends)
