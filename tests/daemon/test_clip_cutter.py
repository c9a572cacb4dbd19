"""ClipCutter: the bounded frame buffer of live streams, and clips written for finished segments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.daemon.clips import ClipCutter
from streamlabel.frames import Frame
from streamlabel.store.dataset import DatasetStore
from streamlabel.tracking.segments import TrackSegment

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LIVE = "rtsp://cam.local/stream"


def frame(pts: float, seq: int, stream: str = "cam") -> Frame:
    return Frame(stream, seq, pts, T0 + timedelta(seconds=pts), np.full((64, 96, 3), seq * 10 % 255, np.uint8))


@pytest.fixture
def store(tmp_path: Path):
    s = DatasetStore(tmp_path / "store", ["eye"])
    yield s
    s.close()


def cutter(store: DatasetStore, **daemon: float) -> ClipCutter:
    return ClipCutter(store, Config.model_validate({"daemon": daemon, "tracking": {"clip_pre_s": 0, "clip_post_s": 0}}))


def test_live_frames_are_kept_for_the_buffer_only(store: DatasetStore) -> None:
    c = cutter(store, clip_buffer_s=2.0)
    for i in range(10):
        c.remember(frame(i * 0.5, i), LIVE)
    assert [f.pts for f in c._frames["cam"]] == [2.5, 3.0, 3.5, 4.0, 4.5]
    c.remember(frame(0.0, 10), LIVE)  # a reconnect: the clock restarted
    assert [f.seq for f in c._frames["cam"]] == [10]
    c.forget("cam")
    assert "cam" not in c._frames


@pytest.mark.parametrize(("url", "buffer_s"), [("/videos/a.mp4", 20.0), (LIVE, 0.0)])
def test_nothing_is_kept_for_files_or_with_no_buffer(store: DatasetStore, url: str, buffer_s: float) -> None:
    c = cutter(store, clip_buffer_s=buffer_s)
    c.remember(frame(0.0, 0), url)
    assert c._frames == {}


def test_a_finished_live_segment_becomes_a_clip(store: DatasetStore) -> None:
    c = cutter(store, clip_buffer_s=10.0)
    frames = [frame(i * 0.5, i) for i in range(8)]
    for f in frames:
        c.remember(f, LIVE)
    seg = TrackSegment("cam", 3, "dog", 0.5, 3.0, T0, T0 + timedelta(seconds=3), tuple(f.frame_id for f in frames[1:7]))
    assert c.cut([seg]) == 1
    assert c.cut([seg]) == 0  # the same segment again: the clip exists already
    clips = list((store.root / "clips" / "cam").glob("*.mp4"))
    assert len(clips) == 1 and clips[0].stat().st_size > 0
    assert c.written == 1


def test_clips_off_keeps_nothing(store: DatasetStore) -> None:
    c = ClipCutter(store, Config.model_validate({"store": {"clips": False}}))
    c.remember(frame(0.0, 0), LIVE)
    assert c._frames == {} and c.cut([]) == 0
