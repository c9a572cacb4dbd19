"""``streamlabel bench stages``: the figures' structure on tiny models, and the full-size architectures' configs."""

from __future__ import annotations

import pytest

from streamlabel.bench.stages import (
    EYE_BOXES,
    VLM_ANSWER_TOKENS,
    FullSizeModels,
    _pipeline_rows,
    bench_stages,
    fixed_candidates,
)
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
    assert result["validate"] is None  # no VLM given
    assert all("with_validate_frames_per_s" not in p for p in result["pipeline"])


@pytest.mark.slow
def test_bench_stages_times_the_vlm_through_the_transformers_backend(tiny_models) -> None:
    models = FullSizeModels(
        tiny_models.yolo,
        tiny_models.grounding_dino,
        tiny_models.sam2_config,
        tiny_models.sam2_checkpoint,
        vlm=tiny_models.vlm,
    )
    result = bench_stages("cpu", batches=(1,), repeats=2, models=models)
    v = result["validate"]
    assert v["stage"] == "validate" and v["backend"] == "transformers"
    assert v["candidates_per_frame"] == len(EYE_BOXES)
    assert v["ms_per_candidate"] == pytest.approx(v["ms_per_frame"] / len(EYE_BOXES), rel=0.01)
    # random weights rarely stop early: close to the answer budget, never over it
    assert 1 <= v["tokens_per_candidate"] <= v["max_new_tokens"] == VLM_ANSWER_TOKENS
    assert v["tokens_per_s"] > 0
    (row,) = result["pipeline"]
    assert 0 < row["with_validate_frames_per_s"] < row["pipeline_frames_per_s"]


def test_fixed_candidates_carry_a_mask_inside_each_eye_box() -> None:
    candidates = fixed_candidates(2)
    assert len(candidates) == 2 * len(EYE_BOXES)
    for c in candidates:
        assert c.part.mask is not None and c.part.mask.shape == (1, *c.image.shape[:2])
        x1, y1, x2, y2 = c.part.xyxy[0].astype(int)
        inside = c.part.mask[0, y1 : y2 + 1, x1 : x2 + 1].sum()
        assert inside == c.part.mask.sum() > 0.5 * (x2 - x1) * (y2 - y1)
        assert (c.anchor_name, c.part_name) == ("dog", "eye")


def test_pipeline_rate_is_one_over_the_summed_frame_times() -> None:
    rows = [
        {"stage": "detect", "batch": 4, "ms_per_frame": 10.0},
        {"stage": "ground", "batch": 4, "ms_per_frame": 20.0},
        {"stage": "segment", "batch": 4, "ms_per_frame": 20.0},
    ]
    assert _pipeline_rows(rows) == [{"batch": 4, "pipeline_frames_per_s": 20.0}]
    # a validator at 450 ms per frame: 1 / (0.05 + 0.45) s
    rows_with = _pipeline_rows(rows, {"ms_per_frame": 450.0})
    assert rows_with == [{"batch": 4, "pipeline_frames_per_s": 20.0, "with_validate_frames_per_s": 2.0}]


def test_full_size_architectures_match_the_production_models() -> None:
    sam = tiny_sam2_config(full_size=True)
    assert sam.model.image_size == 1024
    assert sam.model.image_encoder.trunk.embed_dim == 96  # Hiera-T
    gd = _full_config()
    assert (gd.d_model, gd.num_queries, gd.backbone_config.embed_dim) == (256, 900, 96)
    assert gd.text_config.hidden_size == 768  # BERT-base


def test_full_size_vlm_is_4b_class() -> None:
    import torch
    from transformers import LlavaForConditionalGeneration

    from streamlabel.tiny.vlm import FULL, _tokenizer, vlm_config

    config = vlm_config(FULL, _tokenizer())
    with torch.device("meta"):  # shapes only, no memory
        model = LlavaForConditionalGeneration(config)
    params = sum(p.numel() for p in model.parameters())
    assert 3.5e9 < params < 4.5e9
    assert config.image_seq_length == 576  # CLIP-L/14 at 336 px
    assert config.text_config.vocab_size == 32064
