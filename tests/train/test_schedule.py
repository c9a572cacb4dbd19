"""Retraining on a schedule: when a run is due, one subprocess at a time, failures counted, and promotion only of a
student that beats the current one on the gold set."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from streamlabel.config import Config
from streamlabel.daemon.housekeeping import Housekeeper
from streamlabel.store.manifest import Manifest
from streamlabel.store.reviews import Decision
from streamlabel.store.trained_models import ModelRuns
from streamlabel.train.gold import evaluation_set
from streamlabel.train.metrics import ImagePrediction
from streamlabel.train.runs import current_student
from streamlabel.train.schedule import TrainScheduler, promote_if_better
from tests.daemon.harness import wait_until
from tests.fixtures.train_store import audit, write_frame, write_train_store


def _config(tmp_path: Path, **train: object) -> Config:
    return Config.model_validate({"store": {"path": str(tmp_path / "store")}, "train": train})


def _finished(manifest: Manifest, run_id: str) -> None:
    runs = ModelRuns(manifest)
    runs.start(run_id, "yolo11n-seg.yaml", "hash", 10)
    record = {"val": {"mask_map50_95": 0.1}, "frames": {"train": 8, "val": 2}, "epochs": 3}
    runs.finish(run_id, record, f"models/{run_id}/weights/best.pt")


@pytest.fixture
def gold(tmp_path: Path):
    store = write_train_store(tmp_path / "store", frames_per_stream=1)
    ids = [write_frame(store, "gold", seq, "accepted") for seq in range(3)]
    audit(store, dict.fromkeys(ids, Decision.ACCEPT))
    yield store
    store.close()


def test_only_a_better_student_is_promoted(gold, tmp_path: Path) -> None:
    truth = {f.image: f.truth for f in evaluation_set(gold.manifest, gold.root).frames}

    def predictor_of(student: str):
        def predict(paths: Sequence[Path]) -> list[ImagePrediction]:
            good = student.endswith("good")
            return [
                ImagePrediction(list(truth[p]) if good else [], [0.9] * len(truth[p]) if good else []) for p in paths
            ]

        return predict

    cfg = _config(tmp_path)
    for run_id in ("20261201T000000Z-bad", "20261201T010000Z-good", "20261201T020000Z-bad"):
        _finished(gold.manifest, run_id)
    first = promote_if_better(gold.manifest, gold.root, "20261201T000000Z-bad", cfg, predictor_of)
    assert first["promoted"] is False and current_student(gold.root) is None  # finds nothing: no first student
    better = promote_if_better(gold.manifest, gold.root, "20261201T010000Z-good", cfg, predictor_of)
    assert better["promoted"] is True and better["new"]["student"]["mask_map50_95"] == pytest.approx(1.0)
    assert current_student(gold.root) == "20261201T010000Z-good"
    worse = promote_if_better(gold.manifest, gold.root, "20261201T020000Z-bad", cfg, predictor_of)
    assert worse["promoted"] is False and worse["current"]["student"]["model"] == "20261201T010000Z-good"
    assert current_student(gold.root) == "20261201T010000Z-good"
    events = [json.loads(r[0]) for r in gold.manifest.query("SELECT payload FROM outbox WHERE kind = 'model_trained'")]
    assert [(e["run_id"], e["promoted"], e["epochs"]) for e in events] == [("20261201T010000Z-good", True, 3)]
    assert events[0]["evaluation"]["set"] == "gold"
    with pytest.raises(ValueError, match="not a finished run"):
        promote_if_better(gold.manifest, gold.root, "20990101T000000Z-none", cfg, predictor_of)


def test_due_counts_new_accepted_labels_and_the_period(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store", frames_per_stream=1)  # 4 accepted labels
    by_labels = TrainScheduler(_config(tmp_path, every_labels=4), store.manifest, store.root)
    assert by_labels.due(time.time())
    runs = ModelRuns(store.manifest)
    runs.start("20261202T000000Z-aaaa", "yolo11n-seg.yaml", "", 0)  # a run started now (by hand)
    assert not by_labels.due(time.time())
    runs.fail("20261202T000000Z-aaaa", "test")
    assert not by_labels.due(time.time())  # labels are counted from its start
    for seq in range(3):
        write_frame(store, "new", seq, "accepted")
    write_frame(store, "new", 3, "review")
    assert not by_labels.due(time.time())  # 3 new accepted labels, a review one does not count
    write_frame(store, "new", 4, "accepted")
    assert by_labels.due(time.time())
    runs.start("20261202T000001Z-bbbb", "yolo11n-seg.yaml", "", 0)
    assert not by_labels.due(time.time())  # a run still going blocks the next one
    runs.fail("20261202T000001Z-bbbb", "test")
    for seq in range(5, 9):
        write_frame(store, "new", seq, "accepted")
    by_period = TrainScheduler(_config(tmp_path, every_s=3600), store.manifest, store.root)
    assert not by_period.due(time.time() + 3500)
    assert by_period.due(time.time() + 3700)
    assert not TrainScheduler(_config(tmp_path), store.manifest, store.root).enabled
    store.close()


def _scheduler(tmp_path: Path, code: str, **train: object) -> tuple[TrainScheduler, object]:
    store = write_train_store(tmp_path / "store", frames_per_stream=1)
    cfg = _config(tmp_path, every_labels=1, **train)
    return TrainScheduler(cfg, store.manifest, store.root, command=[sys.executable, "-c", code]), store


@pytest.mark.parametrize(
    ("code", "outcome"), [("import sys; sys.exit(0)", "finished"), ("raise SystemExit(3)", "failed")]
)
def test_tick_runs_one_subprocess_at_a_time_and_counts_how_it_ended(tmp_path: Path, code: str, outcome: str) -> None:
    sched, store = _scheduler(tmp_path, "import time; time.sleep(0.5); " + code)
    now = time.time()
    assert sched.tick(now) == "started" and sched.running
    assert sched.tick(now) is None and sched.started == 1  # one at a time
    assert sched.wait(30)
    assert sched.tick(now) == outcome and not sched.running
    assert (sched.finished, sched.failed) == ((1, 0) if outcome == "finished" else (0, 1))
    assert (store.root / "models" / "scheduled.log").is_file()
    store.close()


def test_a_run_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    sched, store = _scheduler(tmp_path, "import time; time.sleep(60)", timeout_s=60)
    now = time.time()
    assert sched.tick(now) == "started"
    ModelRuns(store.manifest).start("20261202T000000Z-hung", "yolo11n-seg.yaml", "", 0)  # what the run recorded
    assert sched.tick(now + 30) is None
    proc = sched._proc
    assert sched.tick(now + 61) == "timeout" and sched.failed == 1
    assert proc is not None and proc.poll() is not None  # killed, not left behind
    row = ModelRuns(store.manifest).get("20261202T000000Z-hung")
    assert row["status"] == "failed" and "train.timeout_s" in row["error"]
    store.close()


def test_a_failing_scheduled_run_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """The real command (`streamlabel train --promote` in a subprocess) on a store with no val frames: the run
    fails, the failure is recorded and counted, and the housekeeping thread goes on."""
    store = write_train_store(tmp_path / "store", frames_per_stream=1, val_fraction=0.0)
    data = {"store": {"path": str(store.root)}, "train": {"every_labels": 1, "model": "yolo11n-seg.yaml"}}
    data["review"] = {"audit_fraction": 0}  # every frame of so tiny a store would be an audit frame
    config = tmp_path / "streamlabel.yml"
    config.write_text(yaml.safe_dump(data))
    cfg = Config.model_validate(data)
    keeper = Housekeeper(cfg, store, None, retry_s=0.05, config_path=config)
    assert keeper.trainer is not None
    keeper.start()
    try:
        wait_until(lambda: keeper.trainer.failed, "the scheduled run to fail", 120)
    finally:
        assert keeper.stop(10)
    assert keeper.trainer.failed == 1 and keeper.trainer.started == 1
    rows = store.manifest.query("SELECT status, error FROM models")
    assert [r["status"] for r in rows] == ["failed"] and "store.val_fraction" in rows[0]["error"]
    store.close()
