"""ClipCutter: the bounded frame buffer of live streams, clips written for finished segments in the clip thread,
and its bounded queue: a full queue drops the clip (counted), a stop drains or drops what is queued."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.daemon.clips import ClipCutter
from streamlabel.frames import Frame
from streamlabel.store.clips import ClipWriter, count_pending
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
    assert c.cut([seg]) == 1  # queued for the clip thread
    assert c.close(30) and c.written == 1
    assert c.cut([seg]) == 1 and c.close(30)  # the same segment again: the clip exists already
    clips = list((store.root / "clips" / "cam").glob("*.mp4"))
    assert len(clips) == 1 and clips[0].stat().st_size > 0
    assert c.written == 1 and c.dropped == 0


def test_clips_off_keeps_nothing(store: DatasetStore) -> None:
    c = ClipCutter(store, Config.model_validate({"store": {"clips": False}}))
    c.remember(frame(0.0, 0), LIVE)
    assert c._frames == {} and c.cut([]) == 0


class BlockingWriter(ClipWriter):
    """A real ClipWriter whose ``write`` first waits for ``release`` (an encode that takes as long as a test wants)."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        super().__init__(store, cfg)
        self.release = threading.Event()
        self.entered = threading.Event()

    def write(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.release.wait(30)
        return super().write(*args, **kwargs)


def live_segment(c: ClipCutter, track_id: int) -> TrackSegment:
    frames = [frame(i * 0.5, i) for i in range(4)]
    for f in frames:
        c.remember(f, LIVE)
    return TrackSegment("cam", track_id, "dog", 0.0, 1.5, T0, T0 + timedelta(seconds=1.5), ())


def test_a_full_queue_drops_the_clip_after_a_short_wait(store: DatasetStore) -> None:
    dropped: list[int] = []
    cfg = Config.model_validate({"daemon": {"clip_buffer_s": 10.0}, "tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    c = ClipCutter(store, cfg, on_dropped=lambda: dropped.append(1), queue_size=1, wait_s=0.2)
    c.writer = writer = BlockingWriter(store, cfg)
    assert c.cut([live_segment(c, 1)]) == 1
    assert writer.entered.wait(10)  # the clip thread holds segment 1
    assert c.cut([live_segment(c, 2)]) == 1  # waits in the queue
    started = time.monotonic()
    assert c.cut([live_segment(c, 3)]) == 0  # no room: dropped after wait_s, not after the encode
    assert time.monotonic() - started < 5
    assert c.dropped == 1 and dropped == [1]
    writer.release.set()
    assert c.close(30)
    assert c.written == 2 and len(list((store.root / "clips" / "cam").glob("*.mp4"))) == 2


def test_close_drops_what_the_timeout_leaves(store: DatasetStore) -> None:
    cfg = Config.model_validate({"daemon": {"clip_buffer_s": 10.0}, "tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    c = ClipCutter(store, cfg, queue_size=4)
    c.writer = writer = BlockingWriter(store, cfg)
    assert c.cut([live_segment(c, 1), live_segment(c, 2), live_segment(c, 3)]) == 3
    assert writer.entered.wait(10)
    threading.Timer(0.4, writer.release.set).start()  # the clip in hand finishes after the timeout
    started = time.monotonic()
    assert not c.close(0.2)  # never waits past its timeout: the clip in hand is still being written
    assert time.monotonic() - started < 0.5
    assert c.dropped == 2 and c.pending == 0  # the two queued live clips: their frames end with the process
    assert c.close(30) and c.written == 1 and c.dropped == 2  # the clip in hand did finish


def test_close_reports_a_writer_that_never_ends(store: DatasetStore) -> None:
    cfg = Config.model_validate({"daemon": {"clip_buffer_s": 10.0}, "tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    c = ClipCutter(store, cfg)
    c.writer = writer = BlockingWriter(store, cfg)
    c.cut([live_segment(c, 1)])
    assert writer.entered.wait(10)
    assert not c.close(0.1)  # the store must stay open: a write is still running
    writer.release.set()
    assert c.close(30) and c.written == 1


def test_file_clips_the_stop_has_no_time_for_are_cut_at_the_next_start(store: DatasetStore, tmp_path: Path) -> None:
    from streamlabel.tiny.scene import SceneSpec, write_clip

    source = tmp_path / "cam.mp4"
    write_clip(SceneSpec(seconds=4.0), source)
    cfg = Config.model_validate({"tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    c = ClipCutter(store, cfg, queue_size=4)
    c.writer = writer = BlockingWriter(store, cfg)
    c.remember(frame(0.0, 0), str(source))
    pieces = [
        TrackSegment("cam", 4, "dog", t, t + 0.8, T0 + timedelta(seconds=t), T0 + timedelta(seconds=t + 0.8), (), i)
        for i, t in enumerate((0.0, 1.0, 2.0))
    ]
    assert c.cut(pieces) == 3
    assert writer.entered.wait(10)
    started = time.monotonic()
    assert not c.close(0.2)  # the first clip is held in its write; nothing waits for it
    assert time.monotonic() - started < 0.5
    assert c.pending == 3 and c.dropped == 0  # the one in hand and the two queued are left for the next start
    assert count_pending(store) == 3  # what /metrics shows as streamlabel_clips_pending
    writer.release.set()
    assert c.close(30) and c.written == 1  # the one in hand did finish before "the process ended"
    assert count_pending(store) == 2
    again = ClipCutter(store, cfg)
    assert again.resume() == 2  # its commit took its pending row along: it is not cut twice
    assert again.close(60) and again.written == 2
    rows = store.manifest.query("SELECT part, method FROM clips ORDER BY part")
    assert [(r["part"], r["method"]) for r in rows] == [(0, "remux"), (1, "remux"), (2, "remux")]
    assert store.manifest.query("SELECT COUNT(*) FROM clips_pending")[0][0] == 0
    assert count_pending(store) == 0
    events = [json.loads(r["payload"]) for r in store.manifest.query("SELECT payload FROM outbox WHERE kind = 'clip'")]
    assert sorted((e["track_id"], e["part"]) for e in events) == [
        (4, 0),
        (4, 1),
        (4, 2),
    ]  # subscribers tell pieces apart
    assert ClipCutter(store, cfg).resume() == 0
