"""Bad input: truncated, corrupted, lying, badly encoded files and refusing or silent hosts give a clear error or
a reconnect, never a hang or a crash. Every bad file is made here from a generated clip."""

from __future__ import annotations

import itertools
import struct
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams import SourceError, StreamEnd, StreamReader, StreamStatus
from streamlabel.streams.source import iter_sampled, open_container
from tests.fixtures.rtsp import free_port

DEADLINE_S = 60.0
N_FRAMES = 30  # 3 s at 10 fps
PASSWORD = "pa55word"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 3 s scene (keyframe every 10 frames) in four containers."""
    from streamlabel.tiny.scene import SceneSpec, write_clip

    folder = tmp_path_factory.mktemp("bad-input")
    out = {}
    for ext in ("mp4", "mkv", "ts", "avi"):
        out[ext] = folder / f"clean.{ext}"
        write_clip(SceneSpec(seconds=3.0, fps=10), out[ext], gop=10)
    return out


def read_all(path: Path, fps: float = 100.0) -> tuple[list[Frame], StreamEnd, StreamReader]:
    """Every frame of a file through a StreamReader (fps above the source's: nothing is skipped)."""
    reader = StreamReader("f", StreamConfig(url=str(path), fps=fps, queue_size=4))
    reader.start()
    frames: list[Frame] = []
    while True:
        item = reader.queue.get(timeout=DEADLINE_S)
        if isinstance(item, StreamEnd):
            reader.join(DEADLINE_S)
            return frames, item, reader
        frames.append(item)


def assert_in_order(frames: list[Frame]) -> None:
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))


def test_truncated_mp4_fails_with_a_clear_error(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["mp4"].read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) * 6 // 10])  # the index (moov) is written last: now it is gone
    frames, end, reader = read_all(bad)
    assert frames == []
    assert end.error is not None and "cannot open" in end.error and str(bad) in end.error
    assert reader.status == StreamStatus.OFFLINE


@pytest.mark.parametrize("ext", ["mkv", "ts", "avi"])
def test_truncated_stream_gives_the_frames_before_the_cut(clips: dict[str, Path], tmp_path: Path, ext: str) -> None:
    data = clips[ext].read_bytes()
    bad = tmp_path / f"truncated.{ext}"
    bad.write_bytes(data[: len(data) * 6 // 10])
    frames, end, reader = read_all(bad)
    assert 5 <= len(frames) < N_FRAMES
    assert_in_order(frames)
    assert end.error is None and reader.status == StreamStatus.FINISHED


@pytest.mark.parametrize("ext", ["mp4", "mkv", "ts"])
def test_corrupted_packets_in_the_middle_are_skipped(clips: dict[str, Path], tmp_path: Path, ext: str) -> None:
    data = bytearray(clips[ext].read_bytes())
    for offset in range(len(data) // 3, 2 * len(data) // 3, 997):
        data[offset : offset + 8] = b"\xff\x00\xaa\x55\xff\x00\xaa\x55"
    bad = tmp_path / f"corrupt.{ext}"
    bad.write_bytes(bytes(data))
    clean, _, _ = read_all(clips[ext])
    frames, end, reader = read_all(bad)
    assert end.error is None and reader.status == StreamStatus.FINISHED
    assert len(frames) >= N_FRAMES // 2
    assert_in_order(frames)
    # The corruption reached the decoder: some frame differs visibly from the clean decode of the same clip.
    diffs = [np.abs(a.image.astype(int) - b.image.astype(int)).mean() for a, b in zip(clean, frames, strict=False)]
    assert max(diffs) > 2.0
    # The first frames, before the damage, decode as before.
    assert diffs[0] < 1.0


@pytest.mark.parametrize("claimed", [100_000, 1])
def test_header_frame_count_that_lies_is_ignored(clips: dict[str, Path], tmp_path: Path, claimed: int) -> None:
    data = bytearray(clips["avi"].read_bytes())
    # AVI main header: dwTotalFrames is its 5th field; stream header: dwLength is its 9th. Both now lie.
    avih, strh = data.index(b"avih"), data.index(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, claimed)
    struct.pack_into("<I", data, strh + 8 + 32, claimed)
    bad = tmp_path / f"lies-{claimed}.avi"
    bad.write_bytes(bytes(data))
    cfg = StreamConfig(url=str(bad))
    with open_container(cfg.url, cfg) as container:
        assert container.streams.video[0].frames == claimed  # the header really does lie
    frames, end, reader = read_all(bad)
    assert len(frames) == N_FRAMES
    assert_in_order(frames)
    assert end.error is None and reader.status == StreamStatus.FINISHED


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_non_utf8_metadata_is_replaced(tmp_path: Path, ext: str) -> None:
    import av

    path = tmp_path / f"meta.{ext}"
    placeholder = b"PLACEHOLDER-TITLE"
    with av.open(str(path), "w") as out:
        out.metadata["title"] = placeholder.decode()
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            image = np.full((64, 64, 3), 50 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    raw = path.read_bytes()
    assert raw.count(placeholder) == 1
    path.write_bytes(raw.replace(placeholder, b"\xff\xfe\xfdBAD-\xc3\x28-TITLE!"))  # same length, not UTF-8
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path), metadata_errors="strict")
    cfg = StreamConfig(url=str(path), fps=100)
    with open_container(cfg.url, cfg) as container:
        assert "\ufffd" in container.metadata["title"]
        frames = list(iter_sampled("m", cfg.url, cfg, container))
    assert len(frames) == 5


def watch(url: str, **overrides: object) -> tuple[StreamReader, list[tuple[float, StreamStatus, str]], threading.Event]:
    """Start a reader on ``url``; returns it, its status log, and an event set at the first failed open."""
    statuses: list[tuple[float, StreamStatus, str]] = []
    failed = threading.Event()

    def on_status(_stream: str, status: StreamStatus, detail: str) -> None:
        statuses.append((time.monotonic(), status, detail))
        if status == StreamStatus.RECONNECTING:
            failed.set()

    values: dict[str, object] = {"url": url, "open_timeout_s": 1.5, "read_timeout_s": 1.5, "backoff_first_s": 0.5}
    values.update(overrides)
    reader = StreamReader("cam", StreamConfig(**values), on_status=on_status)  # type: ignore[arg-type]
    reader.start()
    return reader, statuses, failed


def stop_and_end(reader: StreamReader) -> StreamEnd:
    reader.stop()
    reader.join(DEADLINE_S)
    assert not reader.is_alive(), "reader did not stop"
    items = []
    while not reader.queue.empty():
        items.append(reader.queue.get_nowait())
    assert items and isinstance(items[-1], StreamEnd)
    return items[-1]


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_refused_connection_reconnects_with_a_redacted_error(scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{scheme}://admin:{PASSWORD}@127.0.0.1:{free_port()}/live"
    reader, statuses, failed = watch(url)
    assert failed.wait(DEADLINE_S), "no failed open reported"
    end = stop_and_end(reader)
    detail = statuses[0][2]
    assert "cannot open" in detail and "refused" in detail.lower(), detail
    assert "admin:***@127.0.0.1" in detail
    assert end.error is not None and reader.status == StreamStatus.OFFLINE
    assert PASSWORD not in caplog.text + detail + end.error


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_silent_host_times_out_instead_of_hanging(silent_host: int, scheme: str) -> None:
    url = f"{scheme}://admin:{PASSWORD}@127.0.0.1:{silent_host}/live"
    started = time.monotonic()
    reader, statuses, failed = watch(url, open_timeout_s=1.5)
    assert failed.wait(DEADLINE_S), "the open never gave up"
    waited = statuses[0][0] - started
    # It waited for the open timeout, not forever (and not just an instant refusal).
    assert 1.0 < waited < 1.5 + 20.0, waited
    detail = statuses[0][2]
    assert "cannot open" in detail and PASSWORD not in detail and "admin:***@" in detail
    stop_and_end(reader)


def test_open_container_on_refused_url_raises_source_error() -> None:
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/x"
    cfg = StreamConfig(url=url, open_timeout_s=2.0)
    with pytest.raises(SourceError, match=r"admin:\*\*\*@") as info:
        open_container(url, cfg)
    assert PASSWORD not in str(info.value)
