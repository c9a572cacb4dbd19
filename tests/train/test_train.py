"""A one-epoch training run on a tiny store (random-init YOLO11n-seg, imgsz 64, CPU) and the ways a run fails."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from streamlabel.store.reviews import Decision
from streamlabel.store.trained_models import ModelRuns
from streamlabel.train.runs import resolve_student
from streamlabel.train.snapshot import near_gold, take_snapshot
from streamlabel.train.trainer import TrainError, TrainOptions, parse_since, train_student
from tests.fixtures.train_store import STEP_S, audit, write_train_store

TINY = {"model": "yolo11n-seg.yaml", "epochs": 1, "imgsz": 64, "batch": 4, "workers": 0}


def test_one_epoch_run_writes_folder_row_and_event(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store")
    train_ids = [r[0] for r in store.manifest.query("SELECT frame_id FROM frames WHERE subset = 'train'")]
    gold_id = sorted(train_ids)[1]
    audit(store, {gold_id: Decision.ACCEPT})
    epochs_seen: list[tuple[int, int]] = []
    opts = TrainOptions(**TINY, gold_guard_s=STEP_S + 1)  # the gold frame and its two neighbours stay out
    result = train_student(store.manifest, store.root, ["eye"], opts, lambda e, n, _f: epochs_seen.append((e, n)))

    folder = store.root / "models" / result.run_id
    for name in ("weights/best.pt", "weights/last.pt", "metrics.json", "snapshot.json", "args.yaml", "data.yaml"):
        assert (folder / name).is_file(), name
    assert epochs_seen == [(1, 1)]
    snapshot = json.loads((folder / "snapshot.json").read_text())
    assert snapshot["hash"] == result.snapshot_hash and snapshot["excluded"]["gold"] == 1
    assert snapshot["excluded"]["near_gold"] == 2
    trained = {f["frame_id"]: f["subset"] for f in snapshot["frames"]}
    assert gold_id not in trained and len(trained) == 16 - 3
    assert result.frames == {s: sum(v == s for v in trained.values()) for s in ("train", "val")} == snapshot["counts"]
    assert not (folder / "dataset").exists(), "the run's links to the dataset images outlived the training"
    assert yaml.safe_load((folder / "data.yaml").read_text())["path"] == str((folder / "dataset").resolve())
    assert not list((store.root / "labels").rglob("*.cache")), "Ultralytics wrote its cache into the store"

    row = ModelRuns(store.manifest).get(result.run_id)
    assert row["status"] == "finished" and row["snapshot_hash"] == result.snapshot_hash and row["frames"] == 13
    assert row["weights"] == f"models/{result.run_id}/weights/best.pt" and row["promoted"] == 0
    metrics = json.loads(row["metrics"])
    assert set(metrics["val"]) == {"box_map50", "box_map50_95", "mask_map50", "mask_map50_95"}
    assert metrics["evaluation"]["set"] == "gold" and metrics["evaluation"]["frames"] == 1
    assert metrics["evaluation"]["student"]["model"] == result.run_id and metrics["epochs"] == 1
    events = store.manifest.query("SELECT topic, payload, qos FROM outbox WHERE kind = 'model_trained'")
    assert [(e["topic"], e["qos"]) for e in events] == [("model/trained", 1)]
    payload = json.loads(events[0]["payload"])
    assert payload["run_id"] == result.run_id and payload["frames"] == result.frames and payload["promoted"] is False
    assert resolve_student(store.root, result.run_id) == folder / "weights" / "best.pt"
    store.close()


@pytest.mark.parametrize(
    ("val_fraction", "model", "says"),
    [
        (0.0, "yolo11n-seg.yaml", "none in val (images/val is empty"),
        (0.5, "not-here/yolo11n-seg.pt", "nothing is downloaded"),
        (0.5, "weights.onnx", "neither a .pt"),
    ],
)
def test_a_failed_run_says_why_and_is_recorded(tmp_path: Path, val_fraction: float, model: str, says: str) -> None:
    store = write_train_store(tmp_path / "store", frames_per_stream=2, val_fraction=val_fraction)
    with pytest.raises(TrainError, match=re.escape(says)) as err:
        train_student(store.manifest, store.root, ["eye"], TrainOptions(**{**TINY, "model": model}))
    row = ModelRuns(store.manifest).get(err.value.run_id)
    assert row["status"] == "failed" and says in row["error"] and row["weights"] is None
    assert not (store.root / "models" / err.value.run_id / "weights").exists()
    store.close()


def test_out_of_disk_is_reported_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills while the run copies its label files (ENOSPC injected into the copy)."""
    store = write_train_store(tmp_path / "store", frames_per_stream=2)

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(TrainError, match="out of disk space") as err:
        train_student(store.manifest, store.root, ["eye"], TrainOptions(**TINY))
    row = ModelRuns(store.manifest).get(err.value.run_id)
    assert row["status"] == "failed" and "store.max_gb" in row["error"]
    store.close()


def test_an_empty_store_fails_naming_the_fix(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store", frames_per_stream=0)
    with pytest.raises(TrainError, match="no training frames"):
        train_student(store.manifest, store.root, ["eye"], TrainOptions(**TINY))
    store.close()


def test_snapshot_since_and_hash(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store", frames_per_stream=2)
    every = take_snapshot(store.manifest, store.root, 0.0)
    assert len(every.frames) == 8 and every.hash == take_snapshot(store.manifest, store.root, 0.0).hash
    later = take_snapshot(store.manifest, store.root, 0.0, parse_since("2026-11-24"))  # cam2 and cam3's days
    assert {f.frame_id.split("_")[0] for f in later.frames} == {"cam2", "cam3"} and later.hash != every.hash
    first = every.frames[0]
    (store.root / first.label).write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n")  # a person's fix changes a label
    assert take_snapshot(store.manifest, store.root, 0.0).hash != every.hash
    store.close()


def test_near_gold_is_per_stream_and_within_the_guard() -> None:
    gold = [{"frame_id": "g", "stream": "a", "time": "2026-11-22T10:00:00+00:00"}]
    rows = [
        {"frame_id": "g", "stream": "a", "time": "2026-11-22T10:00:00+00:00"},
        {"frame_id": "a-59", "stream": "a", "time": "2026-11-22T09:59:01+00:00"},
        {"frame_id": "a+61", "stream": "a", "time": "2026-11-22T10:01:01+00:00"},
        {"frame_id": "b0", "stream": "b", "time": "2026-11-22T10:00:00+00:00"},
    ]
    assert near_gold(rows, gold, 60.0) == {"g", "a-59"}
    assert near_gold(rows, gold, 0.0) == {"g"}


def test_parse_since() -> None:
    assert parse_since("2026-11-20") == "2026-11-20T00:00:00+00:00"
    assert parse_since("2026-11-20T10:00+02:00") == "2026-11-20T08:00:00+00:00"
    assert parse_since(None) is None
    with pytest.raises(ValueError, match="'yesterday' is not an ISO date"):
        parse_since("yesterday")


def test_an_ultralytics_asset_name_is_downloaded_when_the_network_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``yolo11n-seg.pt`` not on disk: fetched into weights_dir (the download is the network's edge, replaced here:
    no test may leave the machine); a name that is not an asset is never fetched."""
    from ultralytics.utils import SETTINGS, downloads

    from streamlabel.train.trainer import BaseModelError, check_base_model

    monkeypatch.setitem(SETTINGS, "weights_dir", str(tmp_path / "weights"))
    asked: list[str] = []

    def fetched(file: str) -> str:
        asked.append(file)
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        Path(file).write_bytes(b"weights")
        return file

    monkeypatch.setattr(downloads, "attempt_download_asset", fetched)
    assert check_base_model("yolo11n-seg.pt") == str(tmp_path / "weights" / "yolo11n-seg.pt")
    assert check_base_model("yolo11n-seg.pt") == asked[0] and len(asked) == 1  # the second time it is on disk
    with pytest.raises(BaseModelError, match="nothing is downloaded"):
        check_base_model("my-own-student.pt")
    assert len(asked) == 1

    def offline(file: str) -> str:
        raise ConnectionError("Download failure. Environment may be offline.")

    monkeypatch.setattr(downloads, "attempt_download_asset", offline)
    with pytest.raises(BaseModelError, match=r"download failed \(ConnectionError.*yolo11s-seg.yaml: random init"):
        check_base_model("yolo11s-seg.pt")
