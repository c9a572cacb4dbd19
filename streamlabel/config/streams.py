"""``streams.<name>``: one camera or file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
    open_timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for a source to open.")
    read_timeout_s: float = Field(
        10.0, gt=0, description="Seconds without a packet before a live source counts as stalled."
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
    enabled: bool = Field(True, description="Set to false to keep a stream in the file without running it.")
