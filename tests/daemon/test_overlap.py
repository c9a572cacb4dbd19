"""models.overlap: the next batch is detected, grounded and segmented while the current one is validated and
stored; batches still finish in order and nothing is lost. Scripted stages (test fixtures) make the handshake
observable: the validator of batch k waits briefly for the detector to start batch k + 1."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.pipeline import Stages
from streamlabel.stages.base import Candidate, Verdict
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter

HANDSHAKE_S = 0.5  # how long a validation waits for the next batch's detection to start


class EveryFrame(dict):
    """A detector script with the same dog in every frame, whatever its index pixel says."""

    def get(self, key: object, default: object = None) -> list[list[float]]:
        return [[20.0, 20.0, 140.0, 120.0]]


class StartCountingDetector(ScriptedDetector):
    def __init__(self) -> None:
        super().__init__(EveryFrame())
        self.started = 0
        self.changed = threading.Condition()

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        with self.changed:
            self.started += 1
            self.changed.notify_all()
        return super().detect(images)


class HandshakeValidator(CountingValidator):
    """Records, per batch, whether the detector started the next batch while this one was being validated."""

    def __init__(self, detector: StartCountingDetector) -> None:
        super().__init__()
        self.detector = detector
        self.overlapped: list[bool] = []

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        k = len(self.overlapped)  # batches judged so far; this is batch k, detected as call k + 1
        with self.detector.changed:
            seen = self.detector.changed.wait_for(lambda: self.detector.started >= k + 2, HANDSHAKE_S)
        self.overlapped.append(bool(seen))
        return super().validate(items)


def run(clip: Path, store_root: Path, overlap: bool) -> tuple[HandshakeValidator, DatasetStore, int]:
    cfg = Config.model_validate(
        {
            "streams": {"cam": {"url": str(clip), "fps": 5, "queue_size": 32}},
            "models": {"batch_size": 2, "overlap": overlap},
            "tracking": {"enabled": False},
        }
    )
    detector = StartCountingDetector()
    validator = HandshakeValidator(detector)
    store = DatasetStore(store_root, ["eye"])
    runner = Runner(cfg, Stages(detector, ScriptedGrounder(), ScriptedSegmenter(), validator), store)
    runner.start()
    reader = runner.readers["cam"]
    deadline = time.monotonic() + 30
    while reader.is_alive() and time.monotonic() < deadline:  # the whole clip queued: every batch is ready at once
        time.sleep(0.01)
    stats = runner.run_until_done()
    return validator, store, stats.frames


@pytest.mark.parametrize("overlap", [True, False])
def test_next_batch_is_perceived_while_this_one_is_judged(tmp_path: Path, scene_clip, overlap: bool) -> None:
    clip, _ = scene_clip  # 2 s: 10 frames at 5 fps, 5 batches of 2
    validator, store, frames = run(clip, tmp_path / "store", overlap)
    assert frames == 10 and len(validator.overlapped) == 5
    if overlap:
        assert validator.overlapped == [True] * 4 + [False]  # the last batch has no next one
    else:
        assert not any(validator.overlapped)
    # In order and complete either way: every frame stored once, its parts accepted, events queued in order.
    rows = store.manifest.query("SELECT seq FROM frames ORDER BY rowid")
    assert [r["seq"] for r in rows] == list(range(10))
    statuses = {r["status"] for r in store.manifest.query("SELECT status FROM labels")}
    assert statuses == {"accepted"}
    assert validator.judged == 2 * 10
    store.close()
    assert check_store(tmp_path / "store") == []
