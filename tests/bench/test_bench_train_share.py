"""``bench train-share``: labeling frames/s alone and while a real ``streamlabel train`` child runs, and the child's
end. One epoch at imgsz 32 on a few frames: the figures are present and positive, the child is gone afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from streamlabel.bench.train_share import child_main, write_share_store
from streamlabel.cli import app
from streamlabel.cli.common import EXIT_CONFIG
from streamlabel.store.manifest import Manifest
from streamlabel.train.snapshot import take_snapshot


def _gone(pid: int) -> bool:
    """Whether neither the process nor any process of its group (its own session) is left."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


@pytest.mark.slow
def test_bench_reports_both_rates_and_stops_the_training_child() -> None:
    ran = CliRunner().invoke(app, ["bench", "train-share", "--frames", "4", "--epochs", "1", "--imgsz", "32", "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    for timing in (result["alone"], result["while_training"]):
        assert timing["frames_per_s"] > 0 and timing["seconds"] > 0
    assert result["ratio"] == pytest.approx(
        result["while_training"]["frames_per_s"] / result["alone"]["frames_per_s"], abs=1e-3
    )
    train = result["train"]
    assert train["device"] == "cpu" and train["epochs"] == 1 and train["max_gpu_memory_gb"] is None
    assert train["trained_s"] > 0 and 0 <= train["epochs_during"] <= train["epochs_done"] <= 1
    assert train["peak_gpu_gb"] is None and "peak_gpu_gb" not in result["alone"]  # nothing on a GPU
    assert train["exit_code"] is not None and _gone(train["pid"])
    assert len(result["load_average"]) == 3 and result["frames"] == 4


def test_share_store_has_frames_to_train_and_validate_on(tmp_path: Path) -> None:
    root = write_share_store(tmp_path / "store", frames_per_stream=3)
    manifest = Manifest(root / "manifest.sqlite")
    try:
        snapshot = take_snapshot(manifest, root, 0.0, None)
    finally:
        manifest.close()
    assert snapshot.counts["train"] > 0 and snapshot.counts["val"] > 0
    assert snapshot.counts["train"] + snapshot.counts["val"] == 12
    labels = sorted((root / "labels").rglob("*.txt"))
    assert len(labels) == 12 and all(len(p.read_text().splitlines()) == 2 for p in labels)  # two eyes each


def test_child_keeps_the_train_exit_code_and_writes_its_peak(tmp_path: Path) -> None:
    config = tmp_path / "streamlabel.yml"
    config.write_text(f"store:\n  path: {tmp_path / 'no-store'}\n")
    peak = tmp_path / "peak.json"
    assert child_main([str(peak), "train", "-c", str(config)]) == EXIT_CONFIG  # no manifest there
    assert json.loads(peak.read_text()) == {"peak_gpu_gb": None}  # it never touched a GPU


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_on_cuda_reports_peak_memory_under_the_cap() -> None:
    args = ["--device", "cuda", "--train-device", "0", "--frames", "8", "--epochs", "3", "--imgsz", "64"]
    ran = CliRunner().invoke(app, ["bench", "train-share", *args, "--max-gpu-memory-gb", "4", "--json"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["alone"]["peak_gpu_gb"] > 0 and result["while_training"]["peak_gpu_gb"] > 0
    train = result["train"]
    assert train["max_gpu_memory_gb"] == 4 and _gone(train["pid"])
    assert train["peak_gpu_gb"] is not None and 0 < train["peak_gpu_gb"] <= 4
