"""HTTP sources through PyAV against a real local HTTP server: MJPEG (multipart) and HLS, replayed on end."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams import StreamEnd, StreamReader, StreamStatus

DEADLINE_S = 60.0
MJPEG_FRAMES, HLS_FRAMES = 20, 30


class _Handler(SimpleHTTPRequestHandler):
    # An MJPEG camera answers with multipart/x-mixed-replace; FFmpeg's mpjpeg muxer uses the boundary "ffmpeg".
    extensions_map = {  # noqa: RUF012  (the base class declares it as a plain class attribute)
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjpg": "multipart/x-mixed-replace;boundary=ffmpeg",
        ".m3u8": "application/vnd.apple.mpegurl",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


def _gray(i: int, h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), (i * 8) % 256, np.uint8)


def _write_media(folder: Path) -> None:
    import av

    with av.open(str(folder / "cam.mjpg"), "w", format="mpjpeg") as out:
        stream = out.add_stream("mjpeg", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
        for i in range(MJPEG_FRAMES):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_gray(i, 120, 160), format="rgb24")))
        out.mux(stream.encode(None))
    options = {"hls_time": "1", "hls_list_size": "0"}
    with av.open(str(folder / "index.m3u8"), "w", format="hls", options=options) as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.gop_size = 10
        for i in range(HLS_FRAMES):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_gray(i, 120, 160), format="rgb24")))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def http_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving an MJPEG stream and an HLS playlist."""
    folder = tmp_path_factory.mktemp("http-media")
    _write_media(folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="http-media", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(DEADLINE_S)


def read_frames(url: str, count: int) -> tuple[list[Frame], list[StreamStatus], StreamReader]:
    """Read ``count`` frames from a live reader (every frame: fps above the source's), then stop it."""
    statuses: list[StreamStatus] = []
    cfg = StreamConfig(url=url, fps=100, queue_size=256, backoff_first_s=0.2, open_timeout_s=10, read_timeout_s=10)
    reader = StreamReader("web", cfg, on_status=lambda _s, status, _d: statuses.append(status))
    reader.start()
    frames: list[Frame] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(frames) < count:
            item = reader.queue.get(timeout=max(0.1, deadline - time.monotonic()))
            assert not isinstance(item, StreamEnd), item
            frames.append(item)
    finally:
        reader.stop()
        reader.join(DEADLINE_S)
    return frames, statuses, reader


@pytest.mark.parametrize(
    ("name", "n", "shape"), [("cam.mjpg", MJPEG_FRAMES, (120, 160, 3)), ("index.m3u8", HLS_FRAMES, (120, 160, 3))]
)
def test_http_stream_is_read_and_replayed_with_monotonic_time(http_base: str, name: str, n: int, shape: tuple) -> None:
    # Past its end the HTTP stream counts as a dropped connection: the reader reconnects and reads it again.
    frames, statuses, reader = read_frames(f"{http_base}/{name}", n + 5)
    assert frames[0].image.shape == shape
    # The first frame is the first one served (gray level 0, JPEG/H.264 rounding aside).
    assert frames[0].image.mean() < 6
    assert [f.seq for f in frames] == list(range(n + 5))
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert all(b.time > a.time for a, b in itertools.pairwise(frames))
    assert statuses[:3] == [StreamStatus.ONLINE, StreamStatus.RECONNECTING, StreamStatus.ONLINE]
    assert reader.reconnects >= 1 and reader.status == StreamStatus.OFFLINE


def test_missing_http_resource_is_a_clear_error(http_base: str) -> None:
    statuses: list[tuple[StreamStatus, str]] = []
    failed = threading.Event()

    def on_status(_s: str, status: StreamStatus, detail: str) -> None:
        statuses.append((status, detail))
        failed.set()

    reader = StreamReader("web", StreamConfig(url=f"{http_base}/nope.m3u8"), on_status=on_status)
    reader.start()
    try:
        assert failed.wait(DEADLINE_S)
    finally:
        reader.stop()
        reader.join(DEADLINE_S)
    status, detail = statuses[0]
    assert status == StreamStatus.RECONNECTING and "404" in detail and "nope.m3u8" in detail


class _GarbageMjpeg(BaseHTTPRequestHandler):
    """A camera that keeps the connection busy with parts that are not JPEG images: packets, but no frame."""

    stop = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=ffmpeg")
        self.end_headers()
        rng = np.random.default_rng(0)
        try:
            while not self.stop.is_set():
                body = b"\xff\xd8" + rng.bytes(2000)
                head = f"--ffmpeg\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                self.wfile.write(head + body + b"\r\n")
                self.wfile.flush()
                self.stop.wait(0.05)  # pace it like a 20 fps camera
        except OSError:
            pass  # the reader hung up


def test_packets_without_frames_count_as_a_stall() -> None:
    handler = type("Garbage", (_GarbageMjpeg,), {"stop": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="garbage-mjpeg", daemon=True)
    thread.start()
    statuses: list[tuple[float, StreamStatus, str]] = []
    stalled = threading.Event()

    def on_status(_s: str, status: StreamStatus, detail: str) -> None:
        statuses.append((time.monotonic(), status, detail))
        if "stalled" in detail:
            stalled.set()

    url = f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg"
    cfg = StreamConfig(url=url, probe_s=0.5, read_timeout_s=2.0, open_timeout_s=5.0, backoff_first_s=0.5)
    reader = StreamReader("junk", cfg, on_status=on_status)
    started = time.monotonic()
    reader.start()
    try:
        assert stalled.wait(DEADLINE_S), f"no stall reported: {statuses}"
    finally:
        reader.stop()
        reader.join(DEADLINE_S)
        handler.stop.set()
        server.shutdown()
        server.server_close()
    online_at = next(t for t, s, _ in statuses if s == StreamStatus.ONLINE)
    stalled_at = next(t for t, _, d in statuses if "stalled" in d)
    assert stalled_at - online_at >= cfg.read_timeout_s * 0.9
    assert stalled_at - started < DEADLINE_S
    assert reader.sampled == 0 and not reader.is_alive()
