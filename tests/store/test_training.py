"""`yolo segment train data=<store>/data.yaml` trains on a store: one epoch of a tiny yolo11n-seg, offline, on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamlabel.store.export import export_store
from streamlabel.store.layout import subset_of
from tests.store.synthetic import T0, fill_store, new_store

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """
import sys
from ultralytics import YOLO
from ultralytics.data.utils import check_det_dataset

export_yaml, store_yaml, project = sys.argv[1:4]
data = check_det_dataset(export_yaml)
print("EXPORT_TRAIN", data["train"])
model = YOLO("yolo11n-seg.yaml")  # built from the yaml: random weights, nothing downloaded
model.train(data=store_yaml, epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False, amp=False,
            project=project, name="run", exist_ok=True, verbose=False)
print("TRAINED")
"""


@pytest.mark.slow
def test_one_epoch_on_the_store(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    fill_store(store, "cam", [["accepted"]] * 8 + [["accepted", "accepted"]] * 4 + [["review"], ["rejected"]])
    # Ultralytics needs a val folder with images: a camera-day that the split sends to val (hash, fraction 0.1).
    val_stream = next(s for s in (f"cam{i}" for i in range(100)) if subset_of(s, f"{T0:%Y-%m-%d}", 0.1) == "val")
    fill_store(store, val_stream, [["accepted"]] * 3)
    store.close()
    export_store(tmp_path / "store", "yolo", tmp_path / "export")
    env = {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(tmp_path / "ultralytics-settings"),
        "PYTHONPATH": str(ROOT),
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            TRAIN,
            str(tmp_path / "export/data.yaml"),
            str(tmp_path / "store/data.yaml"),
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "TRAINED" in output and "Downloading" not in output
    assert f"EXPORT_TRAIN {(tmp_path / 'export/images').resolve()}" in output
    assert "12 images, 0 backgrounds, 0 corrupt" in output  # the 12 dataset frames, not review or rejected ones
    assert "3 images, 0 backgrounds, 0 corrupt" in output  # the val camera-day, apart from the train ones
    weights = tmp_path / "runs/run/weights"
    assert (weights / "last.pt").stat().st_size > 1_000_000 and (weights / "best.pt").is_file()
    print(f"one epoch of yolo11n-seg on 12 frames: {seconds:.1f} s")
