"""What av.open gets per source kind (files, RTSP/RTSPS, HTTP, V4L2), hwaccel fallback, and option validation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from streamlabel.config import StreamConfig
from streamlabel.streams import SourceError, StreamReader, StreamStatus, options
from streamlabel.streams.options import (
    AUTO_HWACCEL_ORDER,
    SourceKind,
    hwaccel_type,
    hwaccel_works,
    open_options,
    resolve_hwaccel,
    source_kind,
)
from streamlabel.streams.source import is_live, open_container

META = "replace"


@pytest.mark.parametrize(
    ("url", "kind", "live"),
    [
        ("/data/clip.mp4", SourceKind.FILE, False),
        ("clip.mkv", SourceKind.FILE, False),
        ("file:///data/clip.mp4", SourceKind.FILE, False),
        ("rtsp://cam/live", SourceKind.RTSP, True),
        ("RTSPS://u:p@cam:322/live", SourceKind.RTSP, True),
        ("http://cam/video.mjpg", SourceKind.HTTP, True),
        ("https://cdn/x/index.m3u8", SourceKind.HTTP, True),
        ("/dev/video0", SourceKind.V4L2, True),
        ("", SourceKind.FILE, False),
    ],
)
def test_source_kind(url: str, kind: SourceKind, live: bool) -> None:
    assert source_kind(url) is kind
    assert is_live(url) is live


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({"url": "/data/clip.mp4"}, {"metadata_errors": META}),
        (
            {"url": "rtsp://cam/live"},
            {"metadata_errors": META, "timeout": (10.0, 10.0), "options": {"rtsp_transport": "tcp"}},
        ),
        (
            {"url": "rtsps://u:p@cam/live", "transport": "udp", "open_timeout_s": 3, "read_timeout_s": 4},
            {"metadata_errors": META, "timeout": (3.0, 4.0), "options": {"rtsp_transport": "udp"}},
        ),
        (
            {"url": "rtsp://cam/live", "probe_s": 0.5},
            {
                "metadata_errors": META,
                "timeout": (10.0, 10.0),
                "options": {"analyzeduration": "500000", "rtsp_transport": "tcp"},
            },
        ),
        (
            {"url": "https://cdn/x/index.m3u8"},
            {
                "metadata_errors": META,
                "timeout": (10.0, 10.0),
                "options": {"reconnect": "1", "reconnect_streamed": "1"},
            },
        ),
        ({"url": "/dev/video0"}, {"metadata_errors": META, "timeout": (10.0, 10.0), "format": "v4l2"}),
        (
            {"url": "/dev/video2", "video_size": "1280x720", "input_fps": 15, "pixel_format": "mjpeg"},
            {
                "metadata_errors": META,
                "timeout": (10.0, 10.0),
                "format": "v4l2",
                "options": {"video_size": "1280x720", "framerate": "15", "input_format": "mjpeg"},
            },
        ),
        # V4L2 settings mean nothing to a file or an RTSP camera and are not passed.
        ({"url": "/data/clip.mp4", "video_size": "640x480"}, {"metadata_errors": META}),
    ],
)
def test_open_options(cfg: dict[str, Any], expected: dict[str, Any]) -> None:
    assert open_options(cfg["url"], StreamConfig(**cfg)) == expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("video_size", "1280", "WIDTHxHEIGHT"),
        ("video_size", "0x720", "WIDTHxHEIGHT"),
        ("hwaccel", "gpu", "must be one of"),
        ("input_fps", 0, "greater than 0"),
        ("backoff_max_s", 0, "greater than 0"),
        ("backoff_jitter", 1.0, "less than 1"),
        ("probe_s", -1, "greater than 0"),
    ],
)
def test_invalid_options_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StreamConfig(url="/dev/video0", **{field: value})


def test_missing_v4l2_device_is_a_clear_error_and_a_retry(tmp_path: Path) -> None:
    device = "/dev/video97"
    assert not Path(device).exists()
    cfg = StreamConfig(url=device, backoff_first_s=0.2)
    with pytest.raises(SourceError, match="no such V4L2 device: /dev/video97"):
        open_container(device, cfg)
    # A camera may be plugged in later: the reader keeps retrying instead of finishing.
    reader = StreamReader("usb", cfg)
    reader.start()
    try:
        deadline_hit = not _poll(lambda: reader.failed_opens >= 2, 30.0)
        assert not deadline_hit, "the reader did not retry the missing device"
        assert reader.status == StreamStatus.RECONNECTING
        assert "no such V4L2 device" in (reader.last_error or "")
    finally:
        reader.stop()
        reader.join(30.0)
    assert reader.status == StreamStatus.OFFLINE


def _poll(condition: Any, timeout_s: float) -> bool:
    import threading
    import time

    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(0.05)
    return condition()


def test_hwaccel_none_is_software() -> None:
    assert resolve_hwaccel(StreamConfig(url="/x.mp4")) is None


def test_hwaccel_auto_picks_the_first_working_device_or_software() -> None:
    picked = hwaccel_type(StreamConfig(url="/x.mp4", hwaccel="auto"))
    assert picked == next((t for t in AUTO_HWACCEL_ORDER if hwaccel_works(t)), None)
    assert (resolve_hwaccel(StreamConfig(url="/x.mp4", hwaccel="auto")) is None) == (picked is None)


@pytest.mark.parametrize("device_type", ["vdpau", "cuda"])
def test_unusable_hwaccel_falls_back_to_software_with_one_warning(
    caplog: pytest.LogCaptureFixture, device_type: str
) -> None:
    # vdpau: a device type this PyAV build leaves out; cuda: built in, but this machine has no usable GPU.
    if hwaccel_works(device_type):
        pytest.skip(f"{device_type} decodes here")
    options._warn_software.cache_clear()
    caplog.set_level(logging.WARNING, logger="streamlabel.streams.options")
    cfg = StreamConfig(url="/x.mp4", hwaccel=device_type)
    assert resolve_hwaccel(cfg) is None
    assert resolve_hwaccel(cfg) is None
    warnings = [r for r in caplog.records if f"hwaccel {device_type}" in r.getMessage()]
    assert len(warnings) == 1 and "software" in warnings[0].getMessage()


def test_hwaccel_that_fails_still_decodes_the_file(scene_clip: tuple[Path, list]) -> None:
    from streamlabel.streams.source import iter_sampled

    path, truth = scene_clip
    cfg = StreamConfig(url=str(path), hwaccel="cuda", fps=100)
    with open_container(cfg.url, cfg) as container:
        frames = list(iter_sampled("hw", cfg.url, cfg, container))
    assert len(frames) == len(truth)
