"""The detector's TensorRT engine cache: names, reuse, staleness, atomic builds and the fallback to the .pt.

On the CPU the exporter is a real function passed in (one that writes a file, one that raises); the `gpu` test
exports the tiny YOLO with Ultralytics and TensorRT and compares its boxes with the .pt's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.stages.base import Runtime
from streamlabel.stages.detect import UltralyticsDetector
from streamlabel.stages.detect_engine import EngineSpec, cached_engine, engine_wanted

SPEC = EngineSpec(imgsz=320, half=True, max_batch=16, tensorrt_version="10.9.0.34", gpu_name="NVIDIA H100 80GB HBM3")
GRAY = np.full((240, 320, 3), 90, np.uint8)
ENGINE_LOG = "streamlabel.stages.detect_engine"


@pytest.fixture(scope="module")
def built_yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamlabel.tiny.yolo import build_tiny_yolo

    return build_tiny_yolo(tmp_path_factory.mktemp("yolo"))


@pytest.fixture
def tiny_pt(built_yolo: Path, tmp_path: Path) -> Path:
    """A copy of the tiny YOLO in a folder of its own, so that engines written beside it stay in this test."""
    folder = tmp_path / "weights"
    folder.mkdir()
    return Path(shutil.copy2(built_yolo, folder / built_yolo.name))


class WritingExporter:
    """Writes an engine-shaped file where Ultralytics does (beside the staged .pt) and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, EngineSpec]] = []

    def __call__(self, pt: Path, spec: EngineSpec) -> Path:
        self.calls.append((pt, spec))
        out = pt.with_suffix(".engine")
        out.write_bytes(f"engine {len(self.calls)} of {pt.name}".encode())
        return out


def raising_exporter(pt: Path, spec: EngineSpec) -> Path:
    """Fails the way a TensorRT build does, after writing part of an engine."""
    pt.with_suffix(".engine").write_bytes(b"half an engine")
    raise RuntimeError("TensorRT engine build failed, check logs for errors")


def detect_config(weights: Path, tensorrt: str = "auto"):
    return Config.model_validate(
        {
            "target": {"anchor": {"classes": ["dog"], "min_confidence": 0.0}},
            "models": {"detect": {"weights": str(weights), "imgsz": 320, "max_det": 5, "tensorrt": tensorrt}},
        }
    )


def engines_beside(pt: Path) -> list[str]:
    return sorted(p.name for p in pt.parent.iterdir() if p.name != pt.name)


@pytest.mark.parametrize(
    "change",
    [
        {"imgsz": 640},
        {"half": False},
        {"max_batch": 8},
        {"tensorrt_version": "10.13.0.35"},
        {"gpu_name": "NVIDIA H200"},
    ],
)
def test_the_name_changes_with_each_setting_it_encodes(change: dict) -> None:
    assert SPEC.file_name("yolo11m") != dataclasses.replace(SPEC, **change).file_name("yolo11m")


def test_the_name_is_stable_and_readable() -> None:
    same = dataclasses.replace(SPEC, device_index=3)  # which GPU of a kind does not change the engine
    assert SPEC.file_name("yolo11m") == same.file_name("yolo11m")
    assert SPEC.file_name("yolo11m") == "yolo11m-320px-fp16-b16-trt10.9.0.34-nvidia-h100-80gb-hbm3.engine"
    assert dataclasses.replace(SPEC, gpu_name="").file_name("best") == "best-320px-fp16-b16-trt10.9.0.34.engine"


def test_an_engine_is_built_once_beside_the_weights_then_reused(
    tiny_pt: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = WritingExporter()
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    first = cached_engine(tiny_pt, SPEC, exporter)
    assert first == tiny_pt.parent / SPEC.file_name("tiny_yolo")
    assert first.read_bytes() == b"engine 1 of tiny_yolo.pt"
    assert engines_beside(tiny_pt) == [first.name]  # the staging folder is gone
    assert exporter.calls[0][0].parent != tiny_pt.parent  # exported from a staged copy, not in place
    assert any("built TensorRT engine" in r.getMessage() for r in caplog.records)

    caplog.clear()
    assert cached_engine(tiny_pt, SPEC, exporter) == first
    assert len(exporter.calls) == 1
    assert any("reusing TensorRT engine" in r.getMessage() for r in caplog.records)


def test_newer_weights_rebuild_the_engine(tiny_pt: Path) -> None:
    exporter = WritingExporter()
    engine = cached_engine(tiny_pt, SPEC, exporter)
    assert engine is not None
    later_s = engine.stat().st_mtime + 60
    os.utime(tiny_pt, (later_s, later_s))  # the .pt was retrained or replaced after the engine was built
    assert cached_engine(tiny_pt, SPEC, exporter) == engine
    assert len(exporter.calls) == 2 and engine.read_bytes() == b"engine 2 of tiny_yolo.pt"


def test_a_changed_setting_builds_a_second_engine(tiny_pt: Path) -> None:
    exporter = WritingExporter()
    fp16 = cached_engine(tiny_pt, SPEC, exporter)
    fp32 = cached_engine(tiny_pt, dataclasses.replace(SPEC, half=False), exporter)
    assert fp16 != fp32 and len(exporter.calls) == 2
    assert engines_beside(tiny_pt) == sorted([fp16.name, fp32.name])  # type: ignore[union-attr]
    assert exporter.calls[1][1].half is False


def test_a_failed_export_leaves_no_engine_and_warns_once(tiny_pt: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert cached_engine(tiny_pt, SPEC, raising_exporter) is None
    assert engines_beside(tiny_pt) == []  # neither the half engine nor the staging folder
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == ENGINE_LOG]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert str(tiny_pt) in text and "TensorRT engine build failed" in text and "models.detect.tensorrt: off" in text


def test_a_stale_staging_folder_is_removed_and_a_fresh_one_kept(tiny_pt: Path) -> None:
    name = SPEC.file_name("tiny_yolo")
    stale, fresh = tiny_pt.parent / f".{name}.old.building", tiny_pt.parent / f".{name}.new.building"
    stale.mkdir(), fresh.mkdir()
    two_days_ago_s = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago_s, two_days_ago_s))
    cached_engine(tiny_pt, SPEC, WritingExporter())
    assert not stale.exists() and fresh.exists()  # a fresh one may be another process's export in progress


def test_the_detector_runs_the_pt_when_the_export_raises(tiny_pt: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = detect_config(tiny_pt)
    det = UltralyticsDetector(cfg.models.detect, cfg.target, Runtime(), engine_spec=SPEC, exporter=raising_exporter)
    assert det.engine is None
    (found,) = det.detect([GRAY])
    assert len(found) > 0 and set(found.data["class_name"]) == {"dog"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == ENGINE_LOG]
    assert len(warnings) == 1 and "tiny_yolo.pt" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("tensorrt", "spec"),
    [("off", SPEC), ("auto", None)],  # off even with an engine spec; auto on the CPU runtime
    ids=["off", "cpu"],
)
def test_off_and_the_cpu_never_export(tiny_pt: Path, tensorrt: str, spec: EngineSpec | None) -> None:
    exporter = WritingExporter()
    cfg = detect_config(tiny_pt, tensorrt)
    det = UltralyticsDetector(cfg.models.detect, cfg.target, Runtime(), engine_spec=spec, exporter=exporter)
    assert det.engine is None and exporter.calls == [] and engines_beside(tiny_pt) == []
    assert len(det.detect([GRAY])[0]) > 0


HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.mark.parametrize(
    ("tensorrt", "device", "weights", "wanted"),
    [
        ("auto", "cuda", "yolo11m.pt", HAVE_TENSORRT),
        ("off", "cuda", "yolo11m.pt", False),
        ("auto", "cpu", "yolo11m.pt", False),
        ("auto", "cuda", "yolo11n_openvino_model", False),
        ("auto", "cuda:1", "yolo11m.engine", False),
    ],
)
def test_engine_wanted(tensorrt: str, device: str, weights: str, wanted: bool) -> None:
    cfg = Config.model_validate({"models": {"detect": {"weights": weights, "tensorrt": tensorrt}}}).models.detect
    assert engine_wanted(cfg, Runtime(device=device)) is wanted


def test_batches_above_the_engines_maximum_are_split_in_order(tiny_pt: Path) -> None:
    cfg = detect_config(tiny_pt)
    det = UltralyticsDetector(cfg.models.detect, cfg.target, Runtime())
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(5)]
    whole = det.detect(images)
    det._max_batch = 2  # what an engine built for batches of 2 sets
    for split, one in zip(det.detect(images), whole, strict=True):
        np.testing.assert_allclose(split.xyxy, one.xyxy, atol=1e-3)


def _matched_share(a: np.ndarray, b: np.ndarray, min_iou: float = 0.9) -> float:
    """Share of the boxes in ``a`` that overlap a box of ``b`` by at least ``min_iou``."""
    if len(a) == 0:
        return 1.0 if len(b) == 0 else 0.0
    import supervision as sv

    return float((sv.box_iou_batch(a, b).max(axis=1) >= min_iou).mean()) if len(b) else 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TENSORRT, reason="needs the tensorrt package")
def test_the_tiny_yolo_runs_as_an_engine_with_the_boxes_of_the_pt(
    tiny_pt: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    cuda = Runtime(device="cuda", dtype="float32")
    fp32 = Config.model_validate(
        {
            "target": {"anchor": {"classes": ["dog"], "min_confidence": 0.0}},
            "models": {"detect": {"weights": str(tiny_pt), "imgsz": 320, "max_det": 5, "half": False}},
        }
    )
    engine_det = UltralyticsDetector(fp32.models.detect, fp32.target, cuda)
    assert engine_det.engine is not None and engine_det.engine.parent == tiny_pt.parent
    assert engine_det.engine.name.startswith("tiny_yolo-320px-fp32-b16-trt")
    plain = fp32.models.detect.model_copy(update={"tensorrt": "off"})
    pt_det = UltralyticsDetector(plain, fp32.target, cuda)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(18)]  # 18 > 16: split in two
    for on_engine, on_pt in zip(engine_det.detect(images), pt_det.detect(images), strict=True):
        assert len(on_engine) > 0 and set(on_engine.data["class_name"]) == {"dog"}
        assert _matched_share(on_engine.xyxy, on_pt.xyxy) >= 0.8
        assert _matched_share(on_pt.xyxy, on_engine.xyxy) >= 0.8
    again = UltralyticsDetector(fp32.models.detect, fp32.target, cuda)
    assert again.engine == engine_det.engine
    assert any("reusing TensorRT engine" in r.getMessage() for r in caplog.records)
