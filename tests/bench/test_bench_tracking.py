"""The tracking benchmark against its stored baseline (tests/tracking/baseline.json) and the issue's goals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamlabel.bench.tracking import bench_tracking
from streamlabel.cli import app
from streamlabel.tracking.scenes import Scene, TrackingSceneSpec

BASELINE = json.loads((Path(__file__).parents[1] / "tracking" / "baseline.json").read_text())
# Everything but the time is deterministic for a seed; the tolerances absorb numeric noise across numpy/scipy builds.
RATIO_TOLERANCE = 0.01
RATE_TOLERANCE = 0.005
# Timing on a shared 2-core machine flakes: only a gross slowdown (a per-frame cost gone quadratic) fails.
MS_PER_FRAME_CEILING = 20.0


@pytest.fixture(scope="module")
def figures() -> dict:
    return bench_tracking(repeats=1)


def test_figures_match_the_baseline(figures: dict) -> None:
    assert figures["frames"] == BASELINE["frames"] and figures["seed"] == BASELINE["seed"]
    for key in ("jitter_ratio", "jitter_ratio_anchors", "jitter_ratio_parts"):
        assert figures[key] == pytest.approx(BASELINE[key], abs=RATIO_TOLERANCE), key
    for key in ("flicker_rate_raw", "flicker_rate", "flag_rate"):
        assert figures[key] == pytest.approx(BASELINE[key], abs=RATE_TOLERANCE), key
    assert figures["id_switches"] <= BASELINE["id_switches"]
    assert figures["fragmentations"] <= BASELINE["fragmentations"]
    assert figures["ms_per_frame"] < MS_PER_FRAME_CEILING


def test_figures_meet_the_goals(figures: dict) -> None:
    assert figures["jitter_ratio"] <= 0.6
    assert figures["id_switches"] == 0
    # The consistency check removes most wrong masks: what it lets through is far rarer than what SAM2 produced.
    assert figures["flicker_rate"] < figures["flicker_rate_raw"] / 5
    assert 9 <= figures["tracks_per_frame"] <= 11  # the goal's "10 tracks"


def test_the_scene_is_reproducible_and_has_its_events() -> None:
    spec = TrackingSceneSpec(seconds=20.0)
    first, second = Scene(spec), Scene(spec)
    for i in (0, 50, 150):
        a, b = first.step(i), second.step(i)
        np.testing.assert_array_equal(a.anchors.xyxy, b.anchors.xyxy)
        np.testing.assert_array_equal(a.parts.mask, b.parts.mask)
    visible = [set(first.truth_at(i)) for i in range(spec.n_frames)]
    person, hidden_dog = spec.dogs, spec.occluded_dog
    assert person not in visible[0] and any(person in v for v in visible)  # the person walks in
    occluded = [i / spec.fps for i, v in enumerate(visible) if hidden_dog not in v]
    assert any(spec.occluded_s[0] <= t < spec.occluded_s[1] for t in occluded)
    eyes = range(spec.dogs + 1, spec.dogs + 1 + 2 * spec.dogs)
    assert all(any(e not in v and (first.objects[e].parent in v) for v in visible) for e in eyes)  # each blinks


def test_cli_prints_one_json_object() -> None:
    result = CliRunner().invoke(app, ["bench", "tracking", "--json", "--seconds", "5"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert {"jitter_ratio", "id_switches", "flicker_rate", "ms_per_frame"} <= set(figures)
    assert figures["frames"] == 50
