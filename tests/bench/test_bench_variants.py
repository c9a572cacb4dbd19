"""``streamlabel bench stages --variant``: config variants timed side by side, with speed-ups against the defaults."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streamlabel.bench.stages import FullSizeModels, _pipeline_rows, bench_config, bench_stages
from streamlabel.bench.variants import BASELINE, apply_overrides, parse_variant, parse_variants
from streamlabel.cli import app


@pytest.mark.parametrize(
    ("text", "name", "overrides"),
    [
        ("g512:models.ground.input_short_side_px=512", "g512", {"models.ground.input_short_side_px": 512}),
        (
            "c:models.compile=default,models.dtype=float16",
            "c",
            {"models.compile": "default", "models.dtype": "float16"},
        ),
        ("t: models.detect.tensorrt = off ", "t", {"models.detect.tensorrt": "off"}),
        ("h:models.detect.half=false", "h", {"models.detect.half": False}),
        ("n:models.ground.input_short_side_px=", "n", {"models.ground.input_short_side_px": None}),
    ],
)
def test_parse_variant(text: str, name: str, overrides: dict) -> None:
    assert parse_variant(text) == (name, overrides)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no-colon", "NAME:KEY=VALUE"),
        (":models.compile=default", "NAME:KEY=VALUE"),
        ("x:", "NAME:KEY=VALUE"),
        ("x:models.compile", "is not KEY=VALUE"),
        ("x:=3", "is not KEY=VALUE"),
    ],
)
def test_bad_variants_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_variant(text)


def test_defaults_come_first_and_names_are_unique() -> None:
    assert list(parse_variants([])) == [BASELINE]
    got = parse_variants(["a:models.compile=default", "defaults:models.dtype=float32"])
    assert list(got) == [BASELINE, "a"] and got[BASELINE] == {"models.dtype": "float32"}
    with pytest.raises(ValueError, match="given twice"):
        parse_variants(["a:models.compile=default", "a:models.dtype=float32"])


def test_apply_overrides_sets_nested_keys_on_a_copy() -> None:
    base = {"models": {"ground": {"batch_size": 4}}}
    out = apply_overrides(base, {"models.ground.input_short_side_px": 512, "models.compile": "default"})
    assert out == {"models": {"ground": {"batch_size": 4, "input_short_side_px": 512}, "compile": "default"}}
    assert base == {"models": {"ground": {"batch_size": 4}}}
    with pytest.raises(ValueError, match="is a value, not a section"):
        apply_overrides(base, {"models.ground.batch_size.x": 1})


def test_bench_config_applies_a_variant_and_validates_it(tiny_models) -> None:
    models = FullSizeModels(
        tiny_models.yolo, tiny_models.grounding_dino, tiny_models.sam2_config, tiny_models.sam2_checkpoint
    )
    cfg = bench_config(models, "cpu", 4, {"models.ground.input_short_side_px": 96})
    assert cfg.models.ground.input_short_side_px == 96 and cfg.models.ground.batch_size == 4
    with pytest.raises(ValueError, match="input_short_side_px"):
        bench_config(models, "cpu", 4, {"models.ground.input_short_side_px": 1})


def test_variants_are_timed_side_by_side(tiny_models) -> None:
    models = FullSizeModels(
        tiny_models.yolo, tiny_models.grounding_dino, tiny_models.sam2_config, tiny_models.sam2_checkpoint
    )
    variants = {BASELINE: {}, "ground64": {"models.ground.input_short_side_px": 64}}
    result = bench_stages("cpu", batches=(1, 2), repeats=1, models=models, variants=variants)
    assert result["variants"] == variants
    got = {(r["variant"], r["stage"], r["batch"]) for r in result["stages"]}
    assert got == {(v, s, b) for v in variants for s in ("detect", "ground", "segment") for b in (1, 2)}
    pipeline = {(p["variant"], p["batch"]): p for p in result["pipeline"]}
    assert set(pipeline) == {(v, b) for v in variants for b in (1, 2)}
    for batch in (1, 2):
        assert pipeline[(BASELINE, batch)]["speedup"] == 1.0
        ratio = (
            pipeline[("ground64", batch)]["pipeline_frames_per_s"]
            / pipeline[(BASELINE, batch)]["pipeline_frames_per_s"]
        )
        assert pipeline[("ground64", batch)]["speedup"] == pytest.approx(ratio, rel=0.02)


def test_speedup_is_the_rate_ratio_to_the_first_variant() -> None:
    rows = [
        {"variant": "defaults", "stage": "ground", "batch": 4, "ms_per_frame": 40.0},
        {"variant": "defaults", "stage": "segment", "batch": 4, "ms_per_frame": 10.0},
        {"variant": "fast", "stage": "ground", "batch": 4, "ms_per_frame": 15.0},
        {"variant": "fast", "stage": "segment", "batch": 4, "ms_per_frame": 10.0},
    ]
    assert _pipeline_rows(rows) == [
        {"variant": "defaults", "batch": 4, "pipeline_frames_per_s": 20.0, "speedup": 1.0},
        {"variant": "fast", "batch": 4, "pipeline_frames_per_s": 40.0, "speedup": 2.0},
    ]


def test_cli_refuses_a_malformed_variant_before_building_anything() -> None:
    result = CliRunner().invoke(app, ["bench", "stages", "--device", "cpu", "--variant", "oops"])
    assert result.exit_code == 2
    assert "NAME:KEY=VALUE" in result.output
