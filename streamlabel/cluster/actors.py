"""The two actors: a reader per stream (wraps ``StreamReader``) and labelers (wrap ``pipeline.Labeler``).

They are plain classes; the driver turns them into Ray actors with ``ray.remote(...).options(...)``. Neither writes
the store: the reader returns sampled frames, the labeler returns judged ``FrameResult``s, track segments and
sightings, and the driver (the daemon) stores them.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streamlabel.cluster.transport import PackedFrame, pack, payload_bytes, unpack
from streamlabel.config import Config, StreamConfig
from streamlabel.frames import Frame, FrameResult
from streamlabel.pipeline import Labeler, Stages
from streamlabel.streams import StreamEnd, StreamReader

log = logging.getLogger(__name__)

StagesFactory = Callable[[Config], Stages]


def node_id() -> str:
    """The Ray node this process runs on ('' outside Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""
    except Exception:  # an actor answering for its figures must not fail on bookkeeping
        return ""


def build_stages(cfg: Config) -> Stages:
    """The stages of ``cfg`` on this node's device (what ``streamlabel run`` loads in-process)."""
    from streamlabel.stages.base import Runtime

    return Stages.build(cfg, Runtime.resolve(cfg.models.device, cfg.models.dtype, cfg.models.compile))


def continue_clock(reader: StreamReader, next_seq: int, last_pts: float, last_time: datetime) -> None:
    """A camera's new reader goes on from its last stored frame: seq counts on, and pts and time follow the real
    time since that frame (frame ids stay unique, pts stays monotonic)."""
    reader.sampled = next_seq
    clock = reader.clock
    clock.anchor = last_time - timedelta(seconds=last_pts)
    clock.last = last_pts
    clock._last_wall = time.monotonic() - max(0.0, (datetime.now(UTC) - last_time).total_seconds())


@dataclass(frozen=True)
class TakeInfo:
    """What a ``take`` returned, without the pixels (the driver fetches only this)."""

    stream: str
    seqs: list[int]
    end: StreamEnd | None
    status: str
    detail: str
    sampled: int
    dropped: int
    reconnects: int
    queued: int
    payload_bytes: int
    node: str


class ReaderActor:
    """Reads one stream on the node it was placed on; ``take`` hands out the next sampled frames in order.

    A file starts after sampled frame ``resume_after`` (its last stored one; -1 from the start) and waits for room
    in its queue (nothing is lost); a camera drops its oldest queued frame when nobody takes them (``dropped``).
    """

    def __init__(
        self,
        name: str,
        cfg: StreamConfig,
        resume_after: int,
        transport: str,
        clock_from: tuple[int, float, datetime] | None = None,
    ) -> None:
        self.transport = transport
        self.reader = StreamReader(name, cfg)
        if clock_from is not None:
            continue_clock(self.reader, *clock_from)
        self.reader.resume(resume_after)
        self.reader.start()
        self.node = node_id()

    def take(self, max_frames: int, wait_s: float) -> tuple[TakeInfo, list[Frame | PackedFrame | StreamEnd]]:
        """Up to ``max_frames`` queued items (frames, then the end marker), waiting up to ``wait_s`` for the first."""
        items: list[Frame | PackedFrame | StreamEnd] = []
        end: StreamEnd | None = None
        q = self.reader.queue
        try:
            item = q.get(timeout=wait_s)
            while True:
                if isinstance(item, StreamEnd):
                    end = item
                    items.append(item)
                    break
                items.append(pack(item, self.transport))
                if len(items) >= max_frames:
                    break
                item = q.get_nowait()
        except queue.Empty:
            pass
        frames = [i for i in items if not isinstance(i, StreamEnd)]
        r = self.reader
        info = TakeInfo(
            r.stream,
            [f.seq for f in frames],
            end,
            str(r.status),
            r.last_error or "",
            r.sampled,
            r.dropped,
            r.reconnects,
            q.qsize(),
            sum(payload_bytes(f) for f in frames),
            self.node,
        )
        return info, items

    def stop(self) -> None:
        """Stop reading (the actor is killed afterwards)."""
        self.reader.stop()
        self.reader.join(5.0)


@dataclass
class Labeled:
    """What one ``label`` call returns: per take its judged results, plus what the call's batches produced."""

    results: list[list[FrameResult]]
    segments: list[Any] = field(default_factory=list)
    """Track segments that ended (``TrackSegment``), any stream of this labeler."""
    sightings: list[Any] = field(default_factory=list)
    """Part-track sightings (``Sighting``) gathered while judging."""
    times: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Stage -> (seconds, items) over the call."""
    sift: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per stream, what the novelty gate and the daily budget counted during the call (``Sifter.counts`` keys)."""
    node: str = ""


class LabelerActor:
    """Owns one ``Labeler`` (the models and the tracks of the streams assigned to it) on one GPU or CPU slot.

    ``label`` takes the frames of one or more streams (each stream's frames in order; calls run one at a time, so a
    stream's calls are labeled in the order they were made) and batches them across streams as the in-process
    labeler does.
    """

    def __init__(self, cfg: Config, stages_factory: StagesFactory = build_stages) -> None:
        self.batch_size = cfg.models.batch_size
        self.labeler = Labeler(cfg, stages_factory(cfg))
        self.labeler.sifter.record_sightings = True
        self.node = node_id()
        self._sift_reported: dict[str, dict[str, int]] = {}  # counts already sent to the driver, per stream

    def ping(self) -> str:
        """The node this labeler runs on (answers once the models are loaded)."""
        return self.node

    def label(self, *takes: list[Frame | PackedFrame | StreamEnd]) -> Labeled:
        """Label the frames of ``takes``; a take ending with its stream's end marker closes that stream's tracks."""
        frames = [unpack(i) for take in takes for i in take if not isinstance(i, StreamEnd)]
        out = Labeled([], node=self.node)
        results: list[FrameResult] = []
        for start in range(0, len(frames), self.batch_size):
            perceived = self.labeler.perceive(frames[start : start + self.batch_size])
            results += self.labeler.judge(perceived)
            for stage, (seconds, items) in perceived.times.items():
                s0, n0 = out.times.get(stage, (0.0, 0))
                out.times[stage] = (s0 + seconds, n0 + items)
        it = iter(results)
        for take in takes:
            out.results.append([next(it) for i in take if not isinstance(i, StreamEnd)])
        out.segments = self.labeler.finished_segments()
        for take in takes:
            if take and isinstance(take[-1], StreamEnd):
                out.segments += self.labeler.end_stream(take[-1].stream)
        out.sightings = self.labeler.take_sightings()
        out.sift = self._sift_since_last()
        return out

    def _sift_since_last(self) -> dict[str, dict[str, int]]:
        """The gate's and the budget's counts since the last call, per stream: the driver adds them up, so a stream
        that moves to another labeler keeps its totals."""
        out: dict[str, dict[str, int]] = {}
        for stream, now in self.labeler.sift_counts().items():
            before = self._sift_reported.get(stream, {})
            delta = {k: v - before.get(k, 0) for k, v in now.items()}
            if any(delta.values()):
                out[stream] = delta
            self._sift_reported[stream] = now
        return out

    def reset(self, stream: str) -> None:
        """Forget ``stream``'s tracks (it restarts after a failure, or moved to another labeler)."""
        self.labeler.end_stream(stream)
