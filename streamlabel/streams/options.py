"""What ``av.open`` gets for each kind of source: format, FFmpeg options, timeouts and hardware decoding."""

from __future__ import annotations

import functools
import io
import logging
from enum import StrEnum
from typing import Any

from streamlabel.config import StreamConfig

log = logging.getLogger(__name__)

# Preference order for ``hwaccel: auto``: the first type that this FFmpeg build offers and that really decodes wins.
AUTO_HWACCEL_ORDER = ("cuda", "vaapi", "qsv", "videotoolbox", "d3d11va", "vulkan")


class SourceKind(StrEnum):
    """The kinds of source ``streams.<name>.url`` can name."""

    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"
    V4L2 = "v4l2"


def source_kind(url: str) -> SourceKind:
    """The kind of source a URL or path names (a plain path or ``file://`` is a file)."""
    lower = url.lower()
    if lower.startswith(("rtsp://", "rtsps://")):
        return SourceKind.RTSP
    if lower.startswith(("http://", "https://")):
        return SourceKind.HTTP
    if url.startswith("/dev/video"):
        return SourceKind.V4L2
    return SourceKind.FILE


def open_target(url: str) -> str:
    """The string ``av.open`` gets: the path of a ``file://`` URL, otherwise the URL itself."""
    return url.removeprefix("file://")


def open_options(url: str, cfg: StreamConfig) -> dict[str, Any]:
    """Keyword arguments for ``av.open`` for this source (without ``hwaccel``; see ``resolve_hwaccel``)."""
    kind = source_kind(url)
    kwargs: dict[str, Any] = {"metadata_errors": "replace"}
    # Files never block on I/O; a timeout there would only cut a slow disk short.
    if kind is not SourceKind.FILE:
        kwargs["timeout"] = (cfg.open_timeout_s, cfg.read_timeout_s)
    options: dict[str, str] = {}
    if kind is not SourceKind.FILE and cfg.probe_s:
        options["analyzeduration"] = str(round(cfg.probe_s * 1_000_000))
    if kind is SourceKind.RTSP:
        options["rtsp_transport"] = cfg.transport
    elif kind is SourceKind.HTTP:
        # HLS and MJPEG over HTTP: let FFmpeg detect the format; reconnect inside a long HTTP response too.
        options["reconnect"] = "1"
        options["reconnect_streamed"] = "1"
    elif kind is SourceKind.V4L2:
        kwargs["format"] = "v4l2"
        if cfg.video_size:
            options["video_size"] = cfg.video_size
        if cfg.input_fps:
            options["framerate"] = f"{cfg.input_fps:g}"
        if cfg.pixel_format:
            options["input_format"] = cfg.pixel_format
    if options:
        kwargs["options"] = options
    return kwargs


@functools.cache
def _available_types() -> tuple[str, ...]:
    from av.codec.hwaccel import hwdevices_available

    return tuple(hwdevices_available())


@functools.cache
def hwaccel_works(device_type: str, device: str | None = None) -> bool:
    """Whether FFmpeg decodes H.264 on this device: one tiny clip decoded once per process (the answer is cached)."""
    import av
    from av.codec.hwaccel import HWAccel

    if device_type not in _available_types():
        return False
    clip = _tiny_h264()
    try:
        accel = HWAccel(device_type=device_type, device=device, allow_software_fallback=False)
        with av.open(clip, hwaccel=accel) as container:
            video = container.streams.video[0]
            next(container.decode(video))
            return bool(getattr(video.codec_context, "is_hwaccel", False))
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError, StopIteration) as exc:
        log.debug("hwaccel %s unusable: %s", device_type, exc)
        return False


@functools.cache
def _warn_software(requested: str, why: str) -> None:
    # Cached so each requested type warns once per process, not once per stream or reconnect.
    log.warning("hwaccel %s is not usable here (%s): decoding in software", requested, why)


def hwaccel_type(cfg: StreamConfig) -> str | None:
    """The device type to decode on for ``cfg.hwaccel``, or None for software.

    ``none`` is software. ``auto`` takes the first working type of AUTO_HWACCEL_ORDER and is silent when none
    works. A named type that this FFmpeg build lacks, or that fails to decode, falls back to software with one
    warning per process.
    """
    requested = cfg.hwaccel
    if requested == "none":
        return None
    if requested == "auto":
        return next((t for t in AUTO_HWACCEL_ORDER if hwaccel_works(t, cfg.hwaccel_device)), None)
    if requested not in _available_types():
        _warn_software(requested, f"this FFmpeg offers {', '.join(_available_types()) or 'none'}")
        return None
    if not hwaccel_works(requested, cfg.hwaccel_device):
        _warn_software(requested, "no working device")
        return None
    return requested


def resolve_hwaccel(cfg: StreamConfig) -> Any | None:
    """The ``av.codec.hwaccel.HWAccel`` to pass to ``av.open`` for ``cfg`` (see ``hwaccel_type``), or None."""
    device_type = hwaccel_type(cfg)
    if device_type is None:
        return None
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type=device_type, device=cfg.hwaccel_device, allow_software_fallback=True)


@functools.cache
def _tiny_h264_bytes() -> bytes:
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _tiny_h264() -> io.BytesIO:
    return io.BytesIO(_tiny_h264_bytes())
