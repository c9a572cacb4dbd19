"""Opening sources with PyAV and turning decoded video into sampled ``Frame``s."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.redaction import redact
from streamlabel.streams.clock import StreamClock
from streamlabel.streams.options import SourceKind, open_options, open_target, resolve_hwaccel, source_kind
from streamlabel.streams.sampling import Sampler

log = logging.getLogger(__name__)

# A broken stream can send hundreds of bad packets a minute: log the first, then every this many.
CORRUPT_LOG_EVERY = 100


class SourceError(RuntimeError):
    """A source could not be opened or read; the message never contains credentials."""


def is_live(url: str) -> bool:
    """Whether a source is live (camera, network stream) rather than a file that can be read to its end."""
    return source_kind(url) is not SourceKind.FILE


def open_container(url: str, cfg: StreamConfig) -> Any:
    """Open ``url`` with PyAV; SourceError (credentials redacted) when it cannot be opened."""
    import av

    kind = source_kind(url)
    target = open_target(url)
    if kind is SourceKind.FILE and not Path(target).is_file():
        raise SourceError(f"no such file: {target}")
    if kind is SourceKind.V4L2 and not Path(target).exists():
        raise SourceError(f"no such V4L2 device: {target} (is the camera plugged in? see `v4l2-ctl --list-devices`)")
    kwargs = open_options(url, cfg)
    hwaccel = resolve_hwaccel(cfg)
    if hwaccel is not None:
        kwargs["hwaccel"] = hwaccel
    started = time.monotonic()
    try:
        container = av.open(target, **kwargs)
    except (av.error.FFmpegError, OSError) as exc:
        waited = time.monotonic() - started
        # strerror leaves out PyAV's copy of the URL, which the message already names once.
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SourceError(f"cannot open {redact(url)}: {redact(reason)} (after {waited:.1f} s)") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{redact(url)} has no video stream")
    return container


def _start_time(container: Any, live: bool) -> datetime:
    """UTC time of the stream's first frame: the file's creation_time when it has one, else now."""
    if not live:
        stamp = (container.metadata or {}).get("creation_time", "")
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


class KeyframeGate:
    """Decides, packet by packet, whether a packet must be decoded.

    With ``mode="auto"`` only keyframes are decoded once the sampling interval is at least the keyframe interval
    (GOP) seen in the stream: every sample then falls on a keyframe anyway. The decision changes only at a
    keyframe, so a decoder never receives a predicted frame without its references. ``"keyframes"`` always skips
    non-key packets, ``"all"`` never does.
    """

    def __init__(self, interval_s: float, mode: str = "auto") -> None:
        self.interval_s = interval_s
        self.mode = mode
        self.gop_s: float | None = None
        self.keyframes_only = mode == "keyframes"
        self._last_key: float | None = None
        self.skipped = 0

    def wants(self, is_keyframe: bool, time_s: float | None) -> bool:
        """Whether to decode a packet with this keyframe flag and presentation time (seconds, or None)."""
        if is_keyframe:
            if time_s is not None and self._last_key is not None and time_s > self._last_key:
                self.gop_s = time_s - self._last_key
            self._last_key = time_s
            if self.mode == "auto":
                self.keyframes_only = self.gop_s is not None and self.interval_s >= self.gop_s
            return True
        if self.keyframes_only:
            self.skipped += 1
            return False
        return True


def iter_sampled(
    name: str,
    url: str,
    cfg: StreamConfig,
    container: Any,
    first_seq: int = 0,
    gate: KeyframeGate | None = None,
    clock: StreamClock | None = None,
    skip_through: int = -1,
) -> Iterator[Frame]:
    """Decode the video of an open container and yield the sampled frames as RGB ``Frame``s.

    Only sampled frames are converted to arrays, and only keyframes are decoded when that is enough (see
    KeyframeGate). Timestamps come from PTS, with the wall clock for frames without one (see StreamClock); pass
    the same ``clock`` to every call for one stream so they stay monotonic across reconnects. A live source that
    delivers packets but no decodable frame for ``read_timeout_s`` raises SourceError (a stall).

    Sampled frames with ``seq <= skip_through`` are counted (seq, pts and clock advance as in a full read) but
    not converted nor yielded: a file resumes after its last stored frame with the numbering of a fresh read.
    """
    live = is_live(url)
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    sampler = Sampler(cfg.fps)
    gate = gate or KeyframeGate(sampler.interval, cfg.decode)
    clock = clock or StreamClock()
    clock.begin()
    start = _start_time(container, live)
    seq = first_seq
    stall_s = cfg.read_timeout_s if live else None
    for frame in _decode(container, video, name, gate, stall_s):
        t = clock.stamp(frame.time, start)
        if not sampler.take(t):
            continue
        if seq <= skip_through:
            seq += 1
            continue
        image = frame.to_ndarray(format="rgb24")
        yield Frame(name, seq, t, clock.utc(t), image, bool(frame.key_frame))
        seq += 1


def _decode(
    container: Any, video: Any, name: str, gate: KeyframeGate | None = None, stall_s: float | None = None
) -> Iterator[Any]:
    """Decoded frames of one video stream; a corrupt packet is skipped (and logged), not fatal.

    With ``stall_s`` set, packets that yield no frame for that long raise SourceError: a source that keeps the
    connection busy without delivering video counts as stalled, like one that sends nothing (PyAV's read timeout).
    """
    import av

    bad = 0
    last_frame = time.monotonic()
    try:
        for packet in container.demux(video):
            if gate is not None and packet.size:
                when = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                if not gate.wants(packet.is_keyframe, when):
                    last_frame = time.monotonic()
                    continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                frames = []
                bad += 1
                if bad == 1 or bad % CORRUPT_LOG_EVERY == 0:
                    log.warning("%s: skipped a corrupt packet (%d so far)", name, bad)
            if frames:
                yield from frames
                last_frame = time.monotonic()
            elif stall_s is not None and time.monotonic() - last_frame > stall_s:
                raise SourceError(f"{name}: stalled: no frame for {stall_s:g} s")
    except av.error.ExitError:
        # PyAV's read timeout interrupted a blocking read: the source sent nothing for read_timeout_s.
        raise SourceError(f"{name}: stalled: no packet within the read timeout") from None
    except av.error.FFmpegError as exc:
        raise SourceError(f"{name}: read failed: {redact(str(exc))}") from None
