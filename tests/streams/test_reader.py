"""StreamReader behaviour beyond one pass over a file: looping, backoff schedule, the figures it exposes."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams import StreamEnd, StreamReader, StreamStatus
from streamlabel.streams import reader as reader_module

DEADLINE_S = 60.0


def test_looped_file_keeps_going_with_monotonic_time(scene_clip: tuple[Path, list]) -> None:
    path, truth = scene_clip  # 2 s at 10 fps
    reader = StreamReader("loop", StreamConfig(url=str(path), fps=10, loop=True, queue_size=2))
    reader.start()
    frames: list[Frame] = []
    try:
        while len(frames) < 2 * len(truth) + 5:
            item = reader.queue.get(timeout=DEADLINE_S)
            assert isinstance(item, Frame), item
            frames.append(item)
    finally:
        reader.stop()
        reader.join(DEADLINE_S)
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert all(b.time > a.time for a, b in itertools.pairwise(frames))
    # The second pass shows the first frame again.
    assert abs(frames[len(truth)].image.astype(int) - frames[0].image.astype(int)).mean() < 1.0
    assert reader.dropped == 0 and reader.reconnects == 0
    assert reader.last_frame_at is not None and reader.last_frame_at <= time.monotonic()


def test_looped_file_without_frames_ends_instead_of_spinning(scene_clip: tuple[Path, list], tmp_path: Path) -> None:
    import av

    path, _ = scene_clip
    headless = tmp_path / "header-only.mkv"
    # Remux to Matroska and keep only its header: the file opens, has a video stream, and decodes no frame.
    full = tmp_path / "full.mkv"
    with av.open(str(path)) as src, av.open(str(full), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    headless.write_bytes(full.read_bytes()[:1000])
    reader = StreamReader("empty", StreamConfig(url=str(headless), loop=True))
    reader.start()
    end = reader.queue.get(timeout=DEADLINE_S)
    assert isinstance(end, StreamEnd)
    reader.join(DEADLINE_S)
    assert not reader.is_alive() and reader.sampled == 0
    assert end.error is not None and "no frame decoded" in end.error


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0), (10, 2.0)],  # doubles from backoff_first_s, capped at backoff_max_s
)
def test_backoff_doubles_up_to_the_cap_with_jitter(attempt: int, base: float) -> None:
    cfg = StreamConfig(url="rtsp://127.0.0.1:1/x", backoff_first_s=0.5, backoff_max_s=2.0, backoff_jitter=0.2)
    reader = StreamReader("cam", cfg)
    delays = [reader.backoff(attempt) for _ in range(200)]
    assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
    assert max(delays) - min(delays) > base * 0.1  # jitter really varies the wait


def test_no_jitter_gives_the_exact_schedule() -> None:
    cfg = StreamConfig(url="rtsp://127.0.0.1:1/x", backoff_first_s=1.0, backoff_max_s=30.0, backoff_jitter=0.0)
    reader = StreamReader("cam", cfg)
    assert [reader.backoff(a) for a in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_stop_during_backoff_returns_promptly() -> None:
    cfg = StreamConfig(url="rtsp://127.0.0.1:1/x", backoff_first_s=30.0, backoff_max_s=30.0)
    reader = StreamReader("cam", cfg)
    reader.start()
    first = reader.queue  # nothing arrives: the camera is down
    deadline = time.monotonic() + DEADLINE_S
    while reader.failed_opens == 0 and time.monotonic() < deadline:
        reader.join(0.05)
    assert reader.failed_opens == 1 and reader.status == StreamStatus.RECONNECTING
    stopped = time.monotonic()
    reader.stop()
    reader.join(DEADLINE_S)
    assert time.monotonic() - stopped < 5.0  # not the 30 s backoff
    end = first.get_nowait()
    assert isinstance(end, StreamEnd) and end.error and "cannot open" in end.error


def _filled_reader(scene_clip: tuple[Path, list]) -> StreamReader:
    """A stopped reader whose one-slot queue holds an unlabeled frame (its thread never started)."""
    path, _ = scene_clip
    reader = StreamReader("cam", StreamConfig(url=str(path), fps=10, queue_size=1))
    reader.queue.put_nowait(Frame("cam", 0, 0.0, None, None))  # type: ignore[arg-type]
    reader.stop()
    return reader


def test_end_marker_waits_for_a_draining_consumer_instead_of_dropping(scene_clip: tuple[Path, list]) -> None:
    reader = _filled_reader(scene_clip)
    got: list[object] = []

    def consumer() -> None:  # the daemon's drain: it reads the queue a little later
        time.sleep(0.6)
        got.append(reader.queue.get(timeout=5))
        got.append(reader.queue.get(timeout=5))

    thread = threading.Thread(target=consumer)
    thread.start()
    reader._put_end(StreamEnd("cam"))
    thread.join(10)
    assert [type(item) for item in got] == [Frame, StreamEnd]
    assert reader.dropped == 0


def test_end_marker_drops_a_frame_only_when_nobody_reads(
    scene_clip: tuple[Path, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "END_WAIT_S", 0.5)
    reader = _filled_reader(scene_clip)
    started = time.monotonic()
    reader._put_end(StreamEnd("cam"))
    assert time.monotonic() - started >= 0.5
    assert isinstance(reader.queue.get_nowait(), StreamEnd)
    assert reader.dropped == 1
