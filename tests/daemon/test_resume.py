"""A file whose frames are already stored resumes after its last stored frame: after a crash midway, or after a
full read, the next run labels only the frames not stored yet, with the seq and pts a fresh read gives them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from tests.daemon.harness import CountingDetector, scripted_stages

FRAMES = 10  # the 2 s scene clip sampled at 5 fps


def config(clip: Path, **stream: object) -> Config:
    return Config.model_validate(
        {
            "streams": {"cam": {"url": str(clip), "fps": 5, "queue_size": 4, **stream}},
            "models": {"batch_size": 2},
            "tracking": {"enabled": False},
        }
    )


def run(cfg: Config, root: Path, detector: CountingDetector) -> int:
    """Label with a fresh store object and runner (as a restarted process does); returns the frames labeled."""
    store = DatasetStore(root, ["eye"])
    runner = Runner(cfg, scripted_stages(detector=detector), store)
    try:
        return runner.run_until_done().frames
    finally:
        runner.stop(1.0)
        runner.supervisor.join(10)
        store.close()


def stored(root: Path) -> list[tuple[int, float]]:
    store = DatasetStore(root, ["eye"])
    try:
        return [
            (r["seq"], round(r["pts"], 6)) for r in store.manifest.query("SELECT seq, pts FROM frames ORDER BY seq")
        ]
    finally:
        store.close()


def test_a_file_resumes_after_a_crash_midway(tmp_path: Path, scene_clip, caplog: pytest.LogCaptureFixture) -> None:
    clip, _ = scene_clip
    cfg = config(clip)
    fresh = tmp_path / "fresh"
    assert run(cfg, fresh, CountingDetector()) == FRAMES

    root = tmp_path / "store"
    with pytest.raises(RuntimeError, match="scripted crash"):
        run(cfg, root, CountingDetector(fail_after=4))  # the labeler dies on the batch of frames 4 and 5
    assert [seq for seq, _ in stored(root)] == [0, 1, 2, 3]

    caplog.set_level(logging.INFO)
    again = CountingDetector()
    assert run(cfg, root, again) == FRAMES - 4
    assert again.seen == FRAMES - 4  # frames 0-3 were neither labeled nor converted
    assert stored(root) == stored(fresh)  # same numbering and timestamps as one uninterrupted read
    assert "resuming after" in caplog.text
    assert "UNIQUE" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert check_store(root) == []


def test_a_file_read_to_its_end_is_not_labeled_again(tmp_path: Path, scene_clip) -> None:
    clip, _ = scene_clip
    root = tmp_path / "store"
    assert run(config(clip), root, CountingDetector()) == FRAMES
    again = CountingDetector()
    assert run(config(clip), root, again) == 0
    assert again.seen == 0
    assert len(stored(root)) == FRAMES
    assert check_store(root) == []


def test_a_looped_file_starts_from_its_beginning(tmp_path: Path, scene_clip) -> None:
    """A looped file stands in for a camera: it has no end to resume towards, so it is never skipped."""
    clip, _ = scene_clip
    root = tmp_path / "store"
    assert run(config(clip), root, CountingDetector()) == FRAMES
    store = DatasetStore(root, ["eye"])
    runner = Runner(config(clip, loop=True), scripted_stages(), store)
    try:
        assert runner._resume_after("cam", runner.cfg.streams["cam"]) == -1
        assert runner._resume_after("other", config(clip).streams["cam"]) == -1  # nothing stored for it
        assert runner._resume_after("cam", config(clip).streams["cam"]) == FRAMES - 1
    finally:
        store.close()
