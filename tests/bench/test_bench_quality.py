"""``streamlabel bench quality``: scene truth, scripted stages, scoring, and the whole benchmark on short runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import supervision as sv
from typer.testing import CliRunner

from streamlabel.bench.quality import Variant, bench_quality, default_variants
from streamlabel.bench.quality_scene import (
    FrameTruth,
    QualityScene,
    QualitySceneSpec,
    SceneBook,
    read_mark,
    true_checks,
)
from streamlabel.bench.quality_score import matched_lines
from streamlabel.bench.quality_stages import BenchValidator, StageErrors, ellipse_mask
from streamlabel.config import TargetConfig
from streamlabel.stages.base import Candidate

NO_REUSE = [Variant("no tracking", tracking=False), Variant("tracking", tracking=True)]
EYE = np.array([100.0, 50.0, 112.0, 62.0])


def _truth(person: bool = False, open_eye: bool = True) -> FrameTruth:
    """A dog at (60, 30)-(160, 105) whose first eye is ``EYE``, a second dog overlapping it (``EYE`` lies inside its
    box too), and a cushion far away."""
    return FrameTruth(
        index=0,
        dogs=np.array([[60.0, 30.0, 160.0, 105.0], [95.0, 45.0, 195.0, 120.0]]),
        eyes=np.array([EYE, EYE + np.array([18, 0, 18, 0]), [157, 65, 169, 77], [175, 65, 187, 77]], dtype=float),
        eye_open=np.array([open_eye, True, True, True]),
        cushion=np.array([200.0, 180.0, 270.0, 222.0]),
        button=np.array([230.0, 196.0, 241.0, 207.0]),
        person=np.array([0.0, 20.0, 70.0, 220.0]) if person else None,
    )


@pytest.mark.parametrize(
    ("part", "anchor", "truth", "failed"),
    [
        (EYE, [60, 30, 160, 105], _truth(), set()),
        (EYE, [60, 30, 160, 105], _truth(person=True), {"no_human"}),
        (EYE, [60, 30, 160, 105], _truth(open_eye=False), {"part_visible"}),
        (EYE + np.array([-6, -6, 6, 6]), [60, 30, 160, 105], _truth(), {"mask_quality"}),  # bloated: IoU 0.25
        (EYE + np.array([10, 0, 10, 0]), [60, 30, 160, 105], _truth(), {"mask_quality"}),  # half off the eye
        (
            EYE + np.array([0, 30, 0, 30]),
            [60, 30, 160, 105],
            _truth(),
            {"part_visible", "mask_on_part", "mask_quality"},
        ),
        (EYE, [95, 45, 195, 120], _truth(), {"mask_on_part"}),  # the other dog's crop: a duplicate
        (
            [230, 196, 241, 207],
            [200, 180, 270, 222],
            _truth(),
            {"anchor_visible", "part_visible", "mask_on_part", "mask_quality"},
        ),  # the cushion's button
    ],
)
def test_true_checks(part, anchor, truth, failed) -> None:
    checks = true_checks(truth, np.asarray(part, dtype=float), np.asarray(anchor, dtype=float))
    assert {name for name, ok in checks.items() if not ok} == failed


def test_matched_lines_counts_each_eye_once() -> None:
    eyes = np.array([EYE, EYE + np.array([18, 0, 18, 0])])
    assert matched_lines([], eyes) == 0
    assert matched_lines([EYE + 1], eyes) == 1
    assert matched_lines([EYE + 1, EYE], eyes) == 1  # a duplicate line on the same eye is wrong
    assert matched_lines([EYE, EYE + np.array([18, 0, 18, 0])], eyes) == 2
    assert matched_lines([EYE + np.array([0, 30, 0, 30])], eyes) == 0
    assert matched_lines([EYE], eyes[:0]) == 0


def test_scene_has_blinks_a_person_and_marked_frames() -> None:
    spec = QualitySceneSpec(frames=60, dogs=3, person_chance=1.0, seed=4)
    scene = QualityScene(spec, sequence=7)
    assert all(len(t.dogs) == 3 and len(t.eyes) == 6 for t in scene.truth)
    assert sum(t.person is not None for t in scene.truth) >= 4  # 2-4 s at 2 fps
    closed = sum(int((~t.eye_open).sum()) for t in scene.truth)
    assert 0 < closed < 0.2 * 6 * 60
    frames = scene.frames("cam")
    assert [read_mark(f.image) for f in frames[:3]] == [(7, 0), (7, 1), (7, 2)]
    assert SceneBook([scene]).lookup(frames[59].image)[0] is scene.truth[59]
    with pytest.raises(KeyError, match="not a frame"):
        SceneBook().lookup(frames[0].image)


def _candidate(image: np.ndarray, box: np.ndarray, anchor: np.ndarray) -> Candidate:
    mask = ellipse_mask(box, image.shape[:2])[None]
    part = sv.Detections(xyxy=box[None].astype(np.float32), mask=mask, class_id=np.zeros(1, dtype=int))
    return Candidate(image, part, anchor, "dog", "eye")


def test_validator_errors_follow_the_seeded_rates() -> None:
    """Good and bad candidates over many frames: the wrong verdicts come at the configured rates."""
    scene = QualityScene(QualitySceneSpec(frames=300, dogs=1, person_chance=0.0, closed_rate=0.0, seed=1))
    errors = StageErrors(false_accept_rate=0.2, false_reject_rate=0.1)
    validator = BenchValidator(SceneBook([scene]), errors, seed=1, target=TargetConfig())
    good, bad = [], []
    for frame in scene.frames("cam"):
        truth = scene.truth[frame.seq]
        good.append(_candidate(frame.image, truth.eyes[0], truth.dogs[0]))
        bad.append(_candidate(frame.image, truth.eyes[0] + [0, 20, 0, 20], truth.dogs[0]))
    false_reject = np.mean([not v.passed for v in validator.validate(good)])
    false_accept = np.mean([v.passed for v in validator.validate(bad)])
    assert validator.judged == 600 and validator.calls == 2
    assert 0.06 <= false_reject <= 0.14
    assert 0.14 <= false_accept <= 0.26
    verdict = validator.validate(bad[:1])[0]
    assert set(verdict.check_probs) == set(verdict.checks)
    assert all((p >= 0.5) == verdict.checks[name] for name, p in verdict.check_probs.items())


def _means(variant: dict) -> dict:
    return {k: s["mean"] for k, s in variant["figures"].items() if k != "pooled"}


def _figures(result: dict, name: str) -> dict:
    return _means(next(v for v in result["variants"] if v["name"] == name))


def test_benchmark_runs_and_returns_figures_in_range() -> None:
    # The novelty gate off: in 16 frames it leaves the reuse variant nothing to reuse (tests/test_pipeline_novelty.py)
    ungated = [Variant(v.name, v.tracking, v.revalidate_s, novelty=False) for v in default_variants()]
    result = bench_quality(seeds=1, frames=16, variants=ungated)
    assert [v["name"] for v in result["variants"]] == [v.name for v in default_variants()]
    for variant in result["variants"]:
        f = _means(variant)
        for name in ("precision", "recall_good", "review_share", "bad_share"):
            assert 0.0 <= f[name] <= 1.0, (variant["name"], name, f[name])
        assert variant["figures"]["pooled"]["precision"] == f["precision"]  # one sequence: pooled is its own
        assert f["candidates_per_frame"] > 0 and f["validator_calls_per_frame"] > 0
        assert f["ignore_per_frame"] >= 0
    tracking, reuse = _figures(result, "tracking"), _figures(result, "reuse 3 s")
    assert tracking["reused"] == 0 < reuse["reused"]
    assert reuse["validator_calls_per_frame"] < tracking["validator_calls_per_frame"]
    again = bench_quality(seeds=1, frames=16, variants=ungated)  # seeded: the same figures (times aside)
    for first, second in zip(result["variants"], again["variants"], strict=True):
        assert [{k: v for k, v in r.items() if k != "ms_per_frame"} for r in first["runs"]] == [
            {k: v for k, v in r.items() if k != "ms_per_frame"} for r in second["runs"]
        ]


def test_a_validator_without_errors_gives_precision_one() -> None:
    errors = StageErrors(false_accept_rate=0.0, false_reject_rate=0.0)
    result = bench_quality(seeds=2, frames=20, errors=errors, variants=NO_REUSE)
    for variant in result["variants"]:
        f = _means(variant)
        assert f["bad_share"] > 0.15  # the stages did make bad candidates ...
        assert f["precision"] == 1.0  # ... and none reached the dataset
        assert variant["figures"]["precision"]["min"] == variant["figures"]["pooled"]["precision"] == 1.0
        assert all(run["dataset_labels"] > 0 for run in variant["runs"])


def test_a_validator_that_accepts_everything_gives_precision_clearly_below_one() -> None:
    errors = StageErrors(false_accept_rate=1.0, false_reject_rate=0.0, unsure_rate=0.0, wrong_confidence=(0.8, 1.0))
    result = bench_quality(seeds=2, frames=20, errors=errors, variants=NO_REUSE[:1])
    f = _figures(result, "no tracking")
    assert f["precision"] < 0.9
    assert f["review_share"] == 0.0


def test_cli_prints_json() -> None:
    from streamlabel.cli import app

    out = CliRunner().invoke(app, ["bench", "quality", "--json", "--seeds", "1", "--frames", "6", "--reuse-s", "2"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [v["name"] for v in result["variants"]] == ["no tracking", "tracking", "reuse 2 s", "novelty gate"]
    assert result["seeds"] == 1 and result["frames"] == 6
    assert all(v["runs"][0]["frames"] == 6 for v in result["variants"])
