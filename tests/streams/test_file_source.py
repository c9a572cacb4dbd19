"""File sources through PyAV: sampled count, order, timestamps, back-pressure, redaction, bad paths."""

from __future__ import annotations

import itertools
import queue
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import StreamConfig
from streamlabel.frames import Frame
from streamlabel.streams import StreamEnd, StreamReader, StreamStatus, redact


def drain(reader: StreamReader, timeout: float = 30.0) -> list:
    items = []
    while True:
        item = reader.queue.get(timeout=timeout)
        items.append(item)
        if isinstance(item, StreamEnd):
            return items


@pytest.mark.parametrize(("fps", "expected"), [(2.0, 4), (5.0, 10), (10.0, 20), (100.0, 20)])
def test_file_is_sampled_completely_in_order(scene_clip: tuple[Path, list], fps: float, expected: int) -> None:
    path, truth = scene_clip
    # A queue of 1 forces back-pressure: the reader must wait, never drop, for a file.
    reader = StreamReader("scene", StreamConfig(url=str(path), fps=fps, queue_size=1))
    reader.start()
    items = drain(reader)
    frames = [i for i in items if isinstance(i, Frame)]
    assert items[-1] == StreamEnd("scene", None)
    assert len(frames) == expected
    assert [f.seq for f in frames] == list(range(expected))
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert reader.dropped == 0 and reader.status == StreamStatus.FINISHED
    first = frames[0]
    assert first.image.shape == (240, 320, 3) and first.image.dtype == np.uint8
    # The decoded first frame matches the rendered truth (H.264 at crf 18 stays close).
    assert np.abs(first.image.astype(int) - truth[0].image.astype(int)).mean() < 6


def test_missing_file_ends_with_a_clear_error(tmp_path: Path) -> None:
    reader = StreamReader("gone", StreamConfig(url=str(tmp_path / "nope.mp4")))
    reader.start()
    (end,) = drain(reader)
    assert isinstance(end, StreamEnd) and "no such file" in (end.error or "")
    assert reader.status == StreamStatus.OFFLINE


def test_not_a_video_ends_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    reader = StreamReader("bad", StreamConfig(url=str(bad)))
    reader.start()
    (end,) = drain(reader)
    assert "cannot open" in (end.error or "")


def test_live_source_drops_oldest_when_full() -> None:
    q: queue.Queue = queue.Queue(2)
    reader = StreamReader("cam", StreamConfig(url="rtsp://127.0.0.1:1/x"), out=q)
    for seq in range(4):
        assert reader._put(Frame("cam", seq, float(seq), None, np.zeros((1, 1, 3), np.uint8)))  # type: ignore[arg-type]
    assert reader.dropped == 2
    assert [q.get_nowait().seq for _ in range(2)] == [2, 3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
        ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),
        ("rtsp://user@host/x", "rtsp://user:***@host/x"),
        ("cannot open rtsps://a:b@h/x: Connection refused", "cannot open rtsps://a:***@h/x: Connection refused"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
