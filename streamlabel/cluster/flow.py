"""What the driver does with each answer: a reader's take, a labeler's results, a ping, and a failure.

A mixin of ``ClusterRunner`` (kept apart so each module does one step): it reads and writes the runner's
``supervisor`` (``StreamSlots``), ``labelers`` and ``stats``, and stores through ``Runner.commit``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from streamlabel.cluster import engine
from streamlabel.cluster.slots import Call, LabelerSlot, StreamSlot
from streamlabel.redaction import redact
from streamlabel.streams import StreamStatus

log = logging.getLogger(__name__)

Sends = dict[int, list[tuple[StreamSlot, int, Any, list[int], Any]]]
"""Per labeler index, the takes to send it: (stream slot, epoch, items ref, seqs, end marker or None)."""


class FlowMixin:
    """Handlers of ``ClusterRunner``'s loop (see ``cluster.driver``)."""

    supervisor: Any
    labelers: list[LabelerSlot]
    cluster: Any
    stats: Any
    metrics: Any
    clips: Any
    labeler: Any
    sift_totals: dict[str, Counter[str]]
    _stopping: bool

    if TYPE_CHECKING:  # provided by ClusterRunner and Runner (declared here for the type checker only)

        def commit(self, results: list[Any], segments: list[Any], sightings: list[Any]) -> None: ...
        def _status(self, stream: str, status: StreamStatus, detail: str) -> None: ...
        def _start_reader(self, slot: StreamSlot) -> None: ...
        def _stop_reader(self, slot: StreamSlot) -> None: ...
        def _start_labeler(self, lab: LabelerSlot) -> None: ...

    # --- readers ------------------------------------------------------------------------------------------------

    def _took(self, slot: StreamSlot, sends: Sends) -> None:
        """A take came back: note the reader's figures and queue its frames for the stream's labeler."""
        assert slot.take is not None
        info_ref, items_ref = slot.take
        slot.take = None
        try:
            info = ray.get(info_ref)
        except RayError as exc:
            self._restart_stream(slot, f"its reader died ({type(exc).__name__})")
            return
        slot.figures(info)
        self._reader_status(slot, StreamStatus(info.status), info.detail)
        if not info.seqs and info.end is None:
            return
        if info.end is not None:
            slot.reading = False
        slot.in_flight += len(info.seqs)
        assert slot.labeler is not None
        sends.setdefault(slot.labeler, []).append((slot, slot.epoch, items_ref, info.seqs, info.end))

    def _reader_status(self, slot: StreamSlot, status: StreamStatus, detail: str) -> None:
        if status != slot.status:
            slot.status, slot.detail = status, detail
            self._status(slot.name, status, redact(detail))

    def _send(self, sends: Sends) -> None:
        """One ``label`` call per labeler with every take that is ready for it (batched across its streams)."""
        for index, takes in sends.items():
            lab = self.labelers[index]
            current = [t for t in takes if t[0].epoch == t[1] and t[0].labeler == index]
            if not current or not lab.alive:
                continue  # the streams were restarted meanwhile: their frames are read again or counted missed
            ref = lab.handle.label.remote(*[items for _, _, items, _, _ in current])
            lab.calls.append(Call(ref, [(slot, epoch, seqs, end) for slot, epoch, _, seqs, end in current]))

    # --- labelers -----------------------------------------------------------------------------------------------

    def _answered(self, lab: LabelerSlot) -> None:
        """Store the answers of ``lab``'s oldest calls that are ready (a labeler answers its calls in order)."""
        while lab.calls and ray.wait([lab.calls[0].ref], timeout=0, fetch_local=True)[0]:
            call = lab.calls.popleft()
            try:
                out = ray.get(call.ref)
            except RayTaskError:
                raise  # a stage failed inside the labeler: the run fails, as it does in one process
            except ActorUnavailableError as exc:
                self._quarantine(lab, exc)
                return
            except RayActorError as exc:
                self._labeler_died(lab, exc)
                return
            except RayError as exc:  # a take's frames were lost with their reader's node
                for slot, epoch, _, _ in call.takes:
                    if slot.epoch == epoch:
                        self._restart_stream(slot, f"its frames were lost ({type(exc).__name__})")
                continue
            self._commit_call(lab, call, out)

    def _commit_call(self, lab: LabelerSlot, call: Call, out: Any) -> None:
        """Store a call's results in seq order per stream, skipping what was committed before; end streams."""
        results: list[Any] = []
        current: set[str] = set()
        for (slot, epoch, seqs, _), got in zip(call.takes, out.results, strict=True):
            if slot.epoch != epoch:
                continue  # frames of a stream that restarted since: re-read (file) or counted missed (camera)
            current.add(slot.name)
            slot.in_flight -= len(seqs)
            fresh = [r for r in got if r.frame.seq > slot.committed_seq]
            if fresh:
                slot.committed_seq = fresh[-1].frame.seq
                slot.last = (fresh[-1].frame.pts, fresh[-1].frame.time)
            results += fresh
        lab.frames += len(results)
        for stage, (seconds, items) in out.times.items():  # the summary's and /status's stage figures
            self.labeler.times.add(stage, seconds, items)
        for stream, counts in out.sift.items():  # the novelty gate's and the budget's counts, for /status
            self.sift_totals.setdefault(stream, Counter()).update(counts)
        if self.metrics is not None:
            self.metrics.observe_batch(out.times)
        segments = [s for s in out.segments if s.stream in current]
        self.commit(results, segments, [s for s in out.sightings if s.stream in current])
        for slot, epoch, _, end in call.takes:
            if end is not None and slot.epoch == epoch:
                self._end_stream(slot, end)

    def _pinged(self, lab: LabelerSlot) -> None:
        """A new labeler answered its ping (its models are loaded): it takes streams from now on."""
        ref, lab.ready = lab.ready, None
        try:
            lab.node = ray.get(ref)
        except RayTaskError:
            raise  # the models did not load: as in one process, the service cannot label
        except RayError as exc:
            self._labeler_died(lab, exc)
            return
        lab.alive = True
        log.info("labeler %d ready on node %s", lab.index, lab.node[:12])
        self.supervisor.changed.set()

    def _check_pings(self) -> None:
        """Fail when no labeler is alive and none answered within ``cluster.ping_timeout_s``."""
        if any(lab.alive for lab in self.labelers):
            return
        waiting = [lab for lab in self.labelers if lab.ready is not None]
        late = [lab for lab in waiting if time.monotonic() - lab.started_at > self.cluster.ping_timeout_s]
        if not waiting or len(late) == len(waiting):
            raise RuntimeError(
                f"no labeler actor is alive and none started within cluster.ping_timeout_s="
                f"{self.cluster.ping_timeout_s} s: check that a node offers cluster.labeler_num_gpus="
                f"{self.cluster.labeler_num_gpus} and labeler_num_cpus={self.cluster.labeler_num_cpus} "
                "(`ray status`), or raise ping_timeout_s for slow model loads"
            )

    def _quarantine(self, lab: LabelerSlot, exc: BaseException) -> None:
        """A labeler that cannot be reached for now (its calls may or may not have run): its streams restart
        elsewhere, and it takes streams again once it answers a ping (or is replaced when it turns out dead)."""
        log.warning(
            "labeler %d on node %s unreachable (%s): quarantined until it answers a ping",
            lab.index,
            lab.node[:12] or "?",
            type(exc).__name__,
        )
        self._move_streams(lab, f"its labeler {lab.index} became unreachable")
        lab.ready, lab.started_at = lab.handle.ping.remote(), time.monotonic()

    def _move_streams(self, lab: LabelerSlot, reason: str) -> None:
        lab.alive = False
        lab.calls.clear()
        for slot in self.supervisor.active():
            if slot.labeler == lab.index:
                slot.labeler = None
                self._restart_stream(slot, reason)

    def _labeler_died(self, lab: LabelerSlot, exc: BaseException) -> None:
        """Move the dead labeler's streams to live labelers (tracks reset) and start a replacement if allowed."""
        log.error("labeler %d on node %s died: %s", lab.index, lab.node[:12] or "?", type(exc).__name__)
        lab.ready = None
        self._move_streams(lab, f"its labeler {lab.index} died")
        engine.kill(lab.handle)
        if lab.restarts < self.cluster.max_restarts and not self._stopping:
            lab.restarts += 1
            self._start_labeler(lab)

    # --- streams ------------------------------------------------------------------------------------------------

    def _restart_stream(self, slot: StreamSlot, reason: str) -> None:
        """A new reader (and maybe another labeler) for ``slot``: its frames in flight are dropped, its tracks reset."""
        slot.epoch += 1
        lost, slot.in_flight = slot.in_flight, 0
        self._stop_reader(slot)
        if slot.live:
            slot.missed += lost
        slot.restarts += 1
        if self._stopping or slot.restarts > self.cluster.max_restarts:
            if not self._stopping:
                log.error(
                    "stream %s: %s; restarted %d times already: left offline", slot.name, reason, slot.restarts - 1
                )
            slot.active = False
            self.stats.ended[slot.name] = reason
            self._reader_status(slot, StreamStatus.OFFLINE, reason)
            return
        where = f"counts {lost} missed frame(s)" if slot.live else f"resumes after sampled frame {slot.committed_seq}"
        log.warning(
            "stream %s: %s; restart %d of %d, tracks reset, %s",
            slot.name,
            reason,
            slot.restarts,
            self.cluster.max_restarts,
            where,
        )
        if slot.labeler is not None and self.labelers[slot.labeler].alive:
            self.labelers[slot.labeler].handle.reset.remote(slot.name)
        self._start_reader(slot)

    def _end_stream(self, slot: StreamSlot, end: Any) -> None:
        """The stream's last frames are stored: retire it (its end status was published from its last take)."""
        slot.active = False
        self._stop_reader(slot)
        self.stats.ended[slot.name] = end.error
        self.clips.forget(slot.name)
