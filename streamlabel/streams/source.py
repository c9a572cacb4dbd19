"""Opening sources with PyAV and turning decoded video into sampled ``Frame``s."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.redaction import redact
from streamlabel.streams.sampling import Sampler

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source could not be opened or read; the message never contains credentials."""


def is_live(url: str) -> bool:
    """Whether a source is live (camera, network stream) rather than a file that can be read to its end."""
    if url.startswith("/dev/video"):
        return True
    return "://" in url and not url.startswith("file://")


def open_options(url: str, cfg: StreamConfig) -> dict[str, Any]:
    """Keyword arguments for ``av.open`` for this source."""
    kwargs: dict[str, Any] = {
        "timeout": (cfg.open_timeout_s, cfg.read_timeout_s),
        "metadata_errors": "replace",
    }
    options: dict[str, str] = {}
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = cfg.transport
    if url.startswith("/dev/video"):
        kwargs["format"] = "v4l2"
    if options:
        kwargs["options"] = options
    return kwargs


def open_container(url: str, cfg: StreamConfig) -> Any:
    """Open ``url`` with PyAV; SourceError (credentials redacted) when it cannot be opened."""
    import av

    target = url.removeprefix("file://")
    if not is_live(url) and not Path(target).is_file():
        raise SourceError(f"no such file: {target}")
    try:
        container = av.open(target, **open_options(url, cfg))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open {redact(url)}: {redact(str(exc))}") from None
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
    name: str, url: str, cfg: StreamConfig, container: Any, first_seq: int = 0, gate: KeyframeGate | None = None
) -> Iterator[Frame]:
    """Decode the video of an open container and yield the sampled frames as RGB ``Frame``s.

    Only sampled frames are converted to arrays, and only keyframes are decoded when that is enough (see
    KeyframeGate). Timestamps come from PTS; a frame without one gets the wall clock since the stream opened.
    Timestamps never go backwards within one call.
    """
    live = is_live(url)
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    sampler = Sampler(cfg.fps)
    gate = gate or KeyframeGate(sampler.interval, cfg.decode)
    start = _start_time(container, live)
    opened = time.monotonic()
    origin: float | None = None
    last_t = -1.0
    seq = first_seq
    for frame in _decode(container, video, name, gate):
        if frame.time is not None:
            if origin is None:
                origin = frame.time
            t = frame.time - origin
        else:
            t = time.monotonic() - opened
        if t <= last_t:
            t = last_t + 1e-6
        last_t = t
        if not sampler.take(t):
            continue
        image = frame.to_ndarray(format="rgb24")
        yield Frame(name, seq, t, start + timedelta(seconds=t), image, bool(frame.key_frame))
        seq += 1


def _decode(container: Any, video: Any, name: str, gate: KeyframeGate | None = None) -> Iterator[Any]:
    """Decoded frames of one video stream; a corrupt packet is skipped (and logged), not fatal."""
    import av

    bad = 0
    try:
        for packet in container.demux(video):
            if gate is not None and packet.size:
                when = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                if not gate.wants(packet.is_keyframe, when):
                    continue
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                log.warning("%s: skipped a corrupt packet (%d so far)", name, bad)
    except av.error.FFmpegError as exc:
        raise SourceError(f"{name}: read failed: {redact(str(exc))}") from None
