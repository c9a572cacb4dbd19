"""``streams.<name>``: one camera or file."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from streamlabel.config.base import _Model


class StreamConfig(_Model):
    """One camera or file."""

    url: str = Field(
        description="Source: a video file path, an rtsp:// or rtsps:// URL, an http(s):// URL (HLS, MJPEG) or "
        "a V4L2 device such as /dev/video0. Use ${NAME} for passwords."
    )
    fps: float = Field(
        2.0,
        gt=0,
        description="Frames sampled per second of video. Higher labels more frames and costs more GPU time.",
    )
    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport. UDP has less latency but loses packets on busy Wi-Fi."
    )
    open_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds to wait for a live source to open (connect, RTSP handshake, first packets). "
        "Longer tolerates slow cameras; shorter notices a dead one sooner.",
    )
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds without a packet or a decoded frame before a live source counts as stalled and is "
        "reconnected. Shorter recovers sooner; too short reconnects a camera that merely hiccupped.",
    )
    probe_s: float | None = Field(
        None,
        gt=0,
        description="Live sources: seconds of stream FFmpeg analyses when opening (analyzeduration); unset keeps "
        "FFmpeg's default (several seconds on RTSP). Lower opens and reconnects sooner; too low can miss the "
        "stream's parameters on a camera whose keyframes are far apart.",
    )
    backoff_first_s: float = Field(
        1.0,
        gt=0,
        description="Wait before the first reconnect attempt of a live source; each failed attempt doubles it.",
    )
    backoff_max_s: float = Field(
        30.0,
        gt=0,
        description="Cap on the reconnect wait. Lower finds a camera that came back sooner, at the cost of more "
        "connection attempts while it is down.",
    )
    backoff_jitter: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Random fraction (plus or minus) applied to each reconnect wait, so many cameras do not "
        "retry in step.",
    )
    loop: bool = Field(False, description="Files only: start again at the end instead of finishing.")
    decode: Literal["auto", "all", "keyframes"] = Field(
        "auto",
        description="'auto' decodes only keyframes when the sampling interval is at least the keyframe interval "
        "(much less CPU); 'all' decodes every frame; 'keyframes' samples keyframes only, whatever the fps.",
    )
    queue_size: int = Field(
        16,
        ge=1,
        description="Sampled frames buffered per stream. A live source drops the oldest when it is full; "
        "a file waits. Larger absorbs GPU hiccups and holds more memory.",
    )
    video_size: str | None = Field(
        None,
        description="V4L2 only: capture size as WIDTHxHEIGHT (e.g. 1280x720); the driver's default when unset.",
    )
    input_fps: float | None = Field(
        None,
        gt=0,
        description="V4L2 only: frame rate asked of the camera (not the sampling rate, see fps); the driver's "
        "default when unset.",
    )
    pixel_format: str | None = Field(
        None,
        description="V4L2 only: input format asked of the camera, e.g. mjpeg, yuyv422 or h264; the driver's "
        "default when unset. mjpeg allows higher sizes and rates over USB 2.",
    )
    hwaccel: str = Field(
        "none",
        description="Hardware decoding through PyAV: 'none' (software), 'auto' (the first device that works: cuda, "
        "vaapi, qsv, ...), or a device type such as 'cuda' or 'vaapi'. A type that does not work here falls back "
        "to software with one warning.",
    )
    hwaccel_device: str | None = Field(
        None,
        description="Device for hwaccel: a CUDA index such as '1' or a render node such as /dev/dri/renderD128; "
        "the default device when unset.",
    )
    enabled: bool = Field(True, description="Set to false to keep a stream in the file without running it.")

    @field_validator("video_size")
    @classmethod
    def _video_size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", value):
            raise ValueError(f"must be WIDTHxHEIGHT such as 1280x720 (got {value!r})")
        return value

    @field_validator("hwaccel")
    @classmethod
    def _hwaccel(cls, value: str) -> str:
        from av.codec.hwaccel import HWDeviceType

        known = {"none", "auto"} | {t.name for t in HWDeviceType}
        if value not in known:
            raise ValueError(f"must be one of {', '.join(sorted(known))} (got {value!r})")
        return value
