"""``streamlabel bench stages``: the figures' structure on tiny models, and the full-size architectures' configs."""

from __future__ import annotations

import pytest

from streamlabel.bench.stages import FullSizeModels, _pipeline_rows, bench_stages
from streamlabel.tiny.gdino import _full_config
from streamlabel.tiny.sam2 import tiny_sam2_config


def test_bench_stages_times_every_stage_at_every_batch(tiny_models) -> None:
    models = FullSizeModels(
        tiny_models.yolo, tiny_models.grounding_dino, tiny_models.sam2_config, tiny_models.sam2_checkpoint
    )
    result = bench_stages("cpu", batches=(1, 2), repeats=1, models=models)
    assert result["device"] == "cpu"
    got = {(r["stage"], r["batch"]) for r in result["stages"]}
    assert got == {(s, b) for s in ("detect", "ground", "segment") for b in (1, 2)}
    for row in result["stages"]:
        assert row["latency_ms"] > 0
        assert row["frames_per_s"] == pytest.approx(row["batch"] / (row["latency_ms"] / 1000), rel=0.02)
    assert [p["batch"] for p in result["pipeline"]] == [1, 2]
    assert all(p["pipeline_frames_per_s"] > 0 for p in result["pipeline"])


def test_pipeline_rate_is_one_over_the_summed_frame_times() -> None:
    rows = [
        {"stage": "detect", "batch": 4, "ms_per_frame": 10.0},
        {"stage": "ground", "batch": 4, "ms_per_frame": 20.0},
        {"stage": "segment", "batch": 4, "ms_per_frame": 20.0},
    ]
    assert _pipeline_rows(rows) == [{"batch": 4, "pipeline_frames_per_s": 20.0}]


def test_full_size_architectures_match_the_production_models() -> None:
    sam = tiny_sam2_config(full_size=True)
    assert sam.model.image_size == 1024
    assert sam.model.image_encoder.trunk.embed_dim == 96  # Hiera-T
    gd = _full_config()
    assert (gd.d_model, gd.num_queries, gd.backbone_config.embed_dim) == (256, 900, 96)
    assert gd.text_config.hidden_size == 768  # BERT-base
