"""A stop ends by its deadline: the drain starts no batch it has no time to finish (the last batches' duration is
measured), and keeps a reserve of ``daemon.stop_timeout_s`` for clips, events and closing the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import supervision as sv

from streamlabel.config import Config
from streamlabel.daemon.runner import STOP_RESERVE_S, STOP_RESERVE_SHARE, Runner
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from streamlabel.tiny.scene import SceneSpec, write_clip
from tests.daemon.harness import CountingDetector, scripted_stages, wait_until

DETECT_S = 0.4  # per image: a batch of 2 takes about 0.8 s, so a stop timeout of 2.5 s fits about two


class SlowDetector(CountingDetector):
    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        time.sleep(DETECT_S * len(images))
        return super().detect(images)


def test_the_drain_starts_no_batch_it_cannot_finish_before_the_stop_deadline(tmp_path: Path) -> None:
    clip = tmp_path / "cam.mp4"
    write_clip(SceneSpec(seconds=10.0), clip)
    cfg = Config.model_validate(
        {
            "streams": {"cam": {"url": str(clip), "fps": 5.0, "queue_size": 16}},
            "models": {"batch_size": 2},
            "tracking": {"enabled": False},
            "store": {"path": str(tmp_path / "store"), "clips": False},
            "daemon": {"stop_timeout_s": 2.5},
        }
    )
    store = DatasetStore(tmp_path / "store", ["eye"])
    runner = Runner(cfg, scripted_stages(detector=SlowDetector()), store)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (runner.run_until_done(), done.set()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: runner.stats.frames >= 4, "two batches labeled")
        runner.stop()
        assert done.wait(30)
        ended = time.monotonic()
    finally:
        store.close()
    assert runner.stop_deadline is not None
    reserve_s = min(STOP_RESERVE_S, STOP_RESERVE_SHARE * 2.5)
    assert ended <= runner.stop_deadline - reserve_s + 0.3, ended - runner.stop_deadline  # room left for the rest
    assert runner.stats.unlabeled > 0  # the queue held more than the stop had time for: counted, not labeled
    assert check_store(tmp_path / "store") == []
