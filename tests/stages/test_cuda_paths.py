"""Every CUDA path the benchmarks use, on the tiny models: they run where CUDA is and are skipped elsewhere.

The CPU runs of the same code are in tests/stages (an explicit bfloat16 on the CPU exercises the reduced-precision
paths there); these check that the CUDA device, half precision, autocast and compilation work on a GPU and agree
with the CPU. The TensorRT engine (tests/stages/test_detect_engine.py), SAM2 autocast (tests/stages/test_segment.py)
and the training share (tests/bench/test_bench_train_share.py) have their own GPU tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
import torch

from streamlabel.bench.stages import FullSizeModels, bench_stages, fixed_anchors, fixed_candidates, synthetic_frames
from streamlabel.config import Config, GroundModelConfig, SegmentModelConfig, TargetConfig, ValidateModelConfig
from streamlabel.stages.base import Runtime
from streamlabel.stages.detect import UltralyticsDetector
from streamlabel.stages.ground import GroundingDinoGrounder
from streamlabel.stages.segment import Sam2Segmenter

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = Runtime("cuda", "bfloat16")
CPU = Runtime("cpu", "float32")


def _detector(weights: str, runtime: Runtime) -> UltralyticsDetector:
    cfg = Config.model_validate(
        {
            "target": {"anchor": {"classes": ["dog"], "min_confidence": 0.0}},
            "models": {"detect": {"weights": weights, "imgsz": 320, "max_det": 5, "tensorrt": "off"}},
        }
    )
    return UltralyticsDetector(cfg.models.detect, cfg.target, runtime)


def test_detect_in_half_precision_on_cuda_finds_the_cpu_boxes(tiny_models) -> None:
    images = synthetic_frames(4)
    gpu = _detector(str(tiny_models.yolo), CUDA).detect(images)
    cpu = _detector(str(tiny_models.yolo), CPU).detect(images)
    for g, c in zip(gpu, cpu, strict=True):
        assert len(g) > 0 and g.xyxy.dtype == np.float32
        iou = sv.box_iou_batch(g.xyxy, c.xyxy)
        assert (iou.max(axis=1) > 0.8).mean() >= 0.8  # fp16 moves a few random-weight boxes, not most


def test_ground_in_bfloat16_on_cuda(tiny_models) -> None:
    settings = {"box_threshold": 0.0, "text_threshold": 0.0, "min_area_ratio": 0.0, "max_area_ratio": 1.0}
    target = TargetConfig.model_validate({"part": {"max_per_anchor": 3, **settings}})
    grounder = GroundingDinoGrounder(GroundModelConfig(model=str(tiny_models.grounding_dino)), target, CUDA)
    assert grounder._model.dtype == torch.bfloat16 and next(grounder._model.parameters()).is_cuda
    images, anchors = synthetic_frames(3), fixed_anchors(3)
    for parts, anchor in zip(grounder.ground(images, anchors), anchors, strict=True):
        assert len(parts) > 0 and parts.xyxy.dtype == np.float32
        centre = (parts.xyxy[:, :2] + parts.xyxy[:, 2:]) / 2
        assert ((centre >= anchor.xyxy[0, :2]) & (centre <= anchor.xyxy[0, 2:])).all()


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_sam2_encoder_on_cuda_gives_the_eager_masks(tiny_models, mode: str) -> None:
    cfg = SegmentModelConfig(config=str(tiny_models.sam2_config), checkpoint=str(tiny_models.sam2_checkpoint))
    eager = Sam2Segmenter(cfg, TargetConfig(), CUDA)
    fast = Sam2Segmenter(cfg, TargetConfig(), Runtime("cuda", "bfloat16", mode))
    images = synthetic_frames(3)
    parts = []
    for _ in images:
        d = sv.Detections(xyxy=np.array([[520, 260, 560, 290], [640, 262, 680, 292]], np.float32))
        d.data["anchor_index"] = np.zeros(2, dtype=int)
        parts.append(d)
    for want, got in zip(eager.segment(images, parts), fast.segment(images, parts), strict=True):
        assert len(got) == len(want)
        if len(want):
            assert ((got.mask == want.mask).mean(axis=(1, 2)) > 0.99).all()


def test_in_process_validator_in_bfloat16_on_cuda(tiny_models) -> None:
    from streamlabel.stages.validate import TransformersValidator

    cfg = ValidateModelConfig(kind="transformers", model=str(tiny_models.vlm), max_new_tokens=96)
    validator = TransformersValidator(cfg, TargetConfig(), CUDA)
    assert validator._model.dtype == torch.bfloat16
    verdicts = validator.validate(fixed_candidates(1))
    assert len(verdicts) == 2 and all(0.0 <= v.confidence <= 1.0 for v in verdicts)
    assert all(v.raw is None for v in verdicts)  # parsed answers, no exception text


def test_bench_stages_on_cuda_with_a_variant(tiny_models) -> None:
    models = FullSizeModels(
        tiny_models.yolo, tiny_models.grounding_dino, tiny_models.sam2_config, tiny_models.sam2_checkpoint
    )
    variants = {"defaults": {}, "compiled": {"models.compile": "default"}}
    result = bench_stages("cuda", batches=(1, 4), repeats=2, models=models, variants=variants)
    assert result["device"] == "cuda" and result["dtype"] == "bfloat16"
    assert result["device_name"] == torch.cuda.get_device_name(0)
    assert {(p["variant"], p["batch"]) for p in result["pipeline"]} == {(v, b) for v in variants for b in (1, 4)}
    assert all(p["pipeline_frames_per_s"] > 0 for p in result["pipeline"])


def test_cuda_decode_of_the_bench_clip(tmp_path) -> None:
    from streamlabel.bench.ingest import bench_ingest, make_1080p
    from streamlabel.streams.options import hwaccel_works

    if not hwaccel_works("cuda", None):
        pytest.skip("this PyAV's FFmpeg cannot decode H.264 on CUDA here (no nvdec in the build or the driver)")
    result = bench_ingest(make_1080p(tmp_path / "clip.mp4"), 2.0, "auto", "cuda")
    assert result["hwaccel_used"] == "cuda" and result["hwaccel_sampled"] == result["sampled"] > 0
