"""A stop after long track segments ends within ``daemon.stop_timeout_s`` with exit 0: clip work that does not fit
is left pending (file sources) or dropped and counted (live and looped sources), never waited for."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from streamlabel.config import Config
from streamlabel.daemon.notify import Notifier
from streamlabel.daemon.service import Daemon
from streamlabel.store.check import check_store
from streamlabel.store.clips import ClipWriter
from streamlabel.store.dataset import DatasetStore
from streamlabel.tiny.scene import SceneSpec, write_clip
from tests.daemon.harness import scripted_stages, wait_until
from tests.daemon.test_daemon_ops import Served

STOP_TIMEOUT_S = 3.0


class StuckWriter(ClipWriter):
    """Every clip write takes far longer than the stop allows (a huge encode); it never finishes in the test."""

    def __init__(self, store: DatasetStore, cfg: Config) -> None:
        super().__init__(store, cfg)
        self.entered = threading.Event()
        self.end = threading.Event()

    def write(self, segment: Any, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.end.wait(120)
        raise RuntimeError("the process ended during this write")


def test_stop_with_long_segments_ends_in_time_with_exit_0(tmp_path: Path) -> None:
    long, looped = tmp_path / "long.mp4", tmp_path / "looped.mp4"
    write_clip(SceneSpec(seconds=60.0), long)
    write_clip(SceneSpec(seconds=3.0), looped)
    cfg = Config.model_validate(
        {
            "streams": {
                "file": {"url": str(long), "fps": 5, "queue_size": 4},
                "loop": {"url": str(looped), "fps": 5, "queue_size": 4, "loop": True},
            },
            "models": {"batch_size": 2},
            "daemon": {"metrics_address": None, "stop_timeout_s": STOP_TIMEOUT_S, "clip_buffer_s": 10},
            "review": {"address": None},
            "tracking": {"clip_min_s": 0.5, "clip_max_s": 1.0},
        }
    )
    root = tmp_path / "store"
    store = DatasetStore(root, ["eye"])
    daemon = Daemon(cfg, None, scripted_stages(), store, notifier=Notifier({}))
    cutter = daemon.runner.clips
    writer = cutter.writer = StuckWriter(store, cfg)
    served = Served(daemon)
    try:
        assert writer.entered.wait(120), "no clip was cut while the streams ran"
        # Several pieces of each stream's long track wait behind the stuck write.
        wait_until(lambda: cutter._jobs.qsize() >= 4, "clips queued behind the stuck write")
        started = time.monotonic()
        daemon.request_stop("test")
        code = served.join(60)
        took = time.monotonic() - started
    finally:
        writer.end.set()
    assert code == 0
    assert took < STOP_TIMEOUT_S, took  # the clip work did not stretch the stop
    assert cutter.pending > 0 and cutter.dropped > 0  # the file's pieces wait for the next start, the loop's not
    check = DatasetStore(root, ["eye"])
    try:
        rows = check.manifest.query("SELECT stream, COUNT(*) AS n FROM clips_pending GROUP BY stream")
        assert {r["stream"]: r["n"] for r in rows}.keys() == {"file"}
    finally:
        check.close()
    assert check_store(root) == []
