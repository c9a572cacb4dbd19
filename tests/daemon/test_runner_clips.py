"""Clips are cut in their own thread: while one encodes, the labeler goes on storing the next batches."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner, RunStats
from streamlabel.store.check import check_store
from streamlabel.store.clips import ClipWriter
from streamlabel.store.dataset import DatasetStore
from streamlabel.tiny.scene import SceneSpec, write_clip
from tests.daemon.harness import scripted_stages, wait_until


class HeldWriter(ClipWriter):
    """A real ClipWriter whose ``write`` waits for ``release`` first: an encode that lasts as long as the test wants."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        super().__init__(store, cfg)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.streams: list[str] = []

    def write(self, segment: Any, *args: Any, **kwargs: Any) -> Any:
        self.streams.append(segment.stream)
        self.entered.set()
        assert self.release.wait(120), "the test never released the clip writer"
        return super().write(segment, *args, **kwargs)


def stored(store: DatasetStore, stream: str) -> int:
    return int(store.manifest.query("SELECT COUNT(*) FROM frames WHERE stream = ?", (stream,))[0][0])


def test_labeling_goes_on_while_a_clip_encodes(tmp_path: Path, scene_clip) -> None:
    short, _ = scene_clip  # 2 s: its track ends (and its clip is cut) long before the other stream's end
    long = tmp_path / "long.mp4"
    write_clip(SceneSpec(seconds=6.0), long)
    cfg = Config.model_validate(
        {
            "streams": {s: {"url": str(p), "fps": 5, "queue_size": 4} for s, p in (("short", short), ("long", long))},
            "models": {"batch_size": 2},
            # every frame is stored (no novelty gate), so the count below says every frame went through
            "tracking": {"clip_min_s": 0.5, "clip_pre_s": 0, "clip_post_s": 0, "novelty": {"enabled": False}},
        }
    )
    store = DatasetStore(tmp_path / "store", ["eye"])
    runner = Runner(cfg, scripted_stages(), store)
    assert runner.clips.writer is not None
    writer = runner.clips.writer = HeldWriter(store, cfg)
    done: list[RunStats] = []
    thread = threading.Thread(target=lambda: done.append(runner.run_until_done()), name="labeler", daemon=True)
    thread.start()
    try:
        assert writer.entered.wait(120), "no clip was cut"
        assert writer.streams == ["short"]
        # The clip of 'short' is held in its encode; every frame of 'long' is labeled and stored meanwhile.
        wait_until(lambda: stored(store, "long") == 30, "the other stream's frames while the clip encodes")
        assert writer.streams == ["short"] and thread.is_alive()  # 'long' is still open: no clip of it yet
    finally:
        writer.release.set()
        thread.join(120)
    assert done and done[0].frames == 40
    assert sorted(writer.streams) == ["long", "short"]
    assert runner.clips.written == 2 and runner.clips.dropped == 0 and runner.clips_closed
    assert {r["stream"] for r in store.manifest.query("SELECT stream FROM clips")} == {"long", "short"}
    store.close()
    assert check_store(tmp_path / "store") == []


class TimedWriter(ClipWriter):
    """A real ClipWriter that notes how many frames the runner had labeled when each clip was cut."""

    def __init__(self, store: DatasetStore, cfg: Config, runner: Runner) -> None:
        super().__init__(store, cfg)
        self.runner = runner
        self.labeled_at: list[int] = []

    def write(self, segment: Any, *args: Any, **kwargs: Any) -> Any:
        self.labeled_at.append(self.runner.stats.frames)
        return super().write(segment, *args, **kwargs)


def test_a_long_track_becomes_consecutive_clips_as_it_goes(tmp_path: Path) -> None:
    long = tmp_path / "long.mp4"
    write_clip(SceneSpec(seconds=8.0), long)
    cfg = Config.model_validate(
        {
            "streams": {"long": {"url": str(long), "fps": 5, "queue_size": 4}},
            "models": {"batch_size": 2},
            "tracking": {"clip_min_s": 0.5, "clip_pre_s": 1, "clip_post_s": 1, "clip_max_s": 2},
        }
    )
    store = DatasetStore(tmp_path / "store", ["eye"])
    runner = Runner(cfg, scripted_stages(), store)
    writer = runner.clips.writer = TimedWriter(store, cfg, runner)
    stats = runner.run_until_done()
    assert stats.frames == 40 and runner.clips.dropped == 0
    rows = [dict(r) for r in store.manifest.query("SELECT * FROM clips ORDER BY start_pts")]
    assert len(rows) == 4 and [r["part"] for r in rows] == [0, 1, 2, 3]
    assert len({r["track_id"] for r in rows}) == 1  # one dog, one track id across its clips
    # Each clip was cut as its piece completed, while the stream was still being labeled.
    assert writer.labeled_at[0] < 30 and writer.labeled_at[2] < 40
    assert writer.labeled_at == sorted(writer.labeled_at)
    pieces = [json.loads((tmp_path / "store" / r["sidecar"]).read_text())["segment"] for r in rows]
    for a, b, row in zip(pieces, pieces[1:], rows, strict=False):
        assert a["next_start_pts"] == b["start_pts"] > a["end_pts"]  # contiguous pieces of one track
        assert row["start_pts"] <= a["start_pts"] and row["end_pts"] == pytest.approx(b["start_pts"])
    assert pieces[-1]["next_start_pts"] is None and rows[-1]["end_pts"] >= pieces[-1]["end_pts"]
    frame_ids = [fid for r in rows for fid in json.loads(r["frame_ids"])]
    assert len(frame_ids) == len(set(frame_ids)) == 39  # the first frame has no id yet (tracking.min_hits)
    store.close()
    assert check_store(tmp_path / "store") == []
