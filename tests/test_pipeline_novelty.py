"""The novelty gate and the daily budget inside the real Labeler and DatasetStore (issue 14, points 1, 2 and 5).

The frames are the benchmark's static scene (a dog resting, bursts of activity, night in the second half) and the
stages are its scripted ones (kind ``bench``), so the Labeler runs its real code from detection to the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from prometheus_client.parser import text_string_to_metric_families

from streamlabel.bench.quality import GOAL_PRECISION, STREAM, Variant, bench_quality
from streamlabel.bench.quality_scene import T0, SceneBook, read_mark
from streamlabel.bench.quality_stages import StageErrors, register_bench_stages
from streamlabel.bench.quality_static import StaticScene, StaticSceneSpec, bench_static, moments_kept
from streamlabel.config import Config
from streamlabel.daemon.metrics import DaemonMetrics
from streamlabel.frames import ANCHOR_INDEX_KEY, Frame, FrameResult
from streamlabel.judging import Sifter
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Runtime
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.tracking.tracker import UNCONFIRMED

# No detector or grounder mistakes (the boxes still jitter): what the gate drops is the scene's stillness only.
CLEAN = StageErrors(
    dog_miss_rate=0.0,
    false_dog_rate=0.0,
    eye_miss_rate=0.0,
    shifted_rate=0.0,
    non_eye_rate=0.0,
    bad_mask_rate=0.0,
)


def _config(novelty: bool, **store: Any) -> Config:
    cfg = Variant("test", tracking=True, novelty=novelty).config(people=True)
    return cfg.model_copy(update={"store": cfg.store.model_copy(update=store)})


def label_static(
    tmp_path: Path, novelty: bool, minutes: float = 1.0, **store: Any
) -> tuple[StaticScene, Labeler, list[int], dict[int, int], set[int]]:
    """Label a static scene into a store under ``tmp_path``; the scene, the Labeler, the frame index of every
    candidate the validator saw, parts per frame result, and the frame indices in the store's manifest (the store
    is checked with ``check_store``)."""
    scene = StaticScene(StaticSceneSpec(minutes=minutes, bursts=2, seed=3))
    register_bench_stages(SceneBook([scene]), CLEAN, seed=3)
    cfg = _config(novelty, **store)
    stages = Stages.build(cfg, Runtime())
    judged: list[int] = []
    validate = stages.validator.validate

    def recording(items):  # the validator as built, recording which frames it is asked about
        judged.extend(read_mark(c.image)[1] for c in items)
        return validate(items)

    stages.validator.validate = recording
    labeler = Labeler(cfg, stages)
    store_ = DatasetStore.from_config(cfg, tmp_path / f"store-{novelty}")
    config_hash = cfg.digest()
    store_.manifest.record_run(config_hash, cfg.model_dump(mode="json", by_alias=True), stages.model_ids())
    parts: dict[int, int] = {}
    frames = scene.frames(STREAM)
    for i in range(0, len(frames), cfg.models.batch_size):
        for result in labeler.label(frames[i : i + cfg.models.batch_size]):
            parts[result.frame.seq] = len(result.parts)
            store_.write(result, config_hash)
    stored = {int(r["seq"]) for r in store_.manifest.query("SELECT seq FROM frames")}
    store_.close()
    assert check_store(store_.root) == []
    return scene, labeler, judged, parts, stored


def test_the_gate_drops_a_still_dogs_near_copies_and_keeps_its_bursts(tmp_path: Path) -> None:
    scene, labeler, judged, parts, stored = label_static(tmp_path, novelty=True)
    _, off_labeler, off_judged, _, off_stored = label_static(tmp_path, novelty=False)
    # Without the gate every frame's two eyes are validated and nearly every frame is stored.
    assert len(off_judged) >= 2 * 0.95 * scene.spec.frames
    assert off_labeler.sift_counts()[STREAM]["gate_dropped"] == 0
    # With it, a few frames a minute: the first, the bursts, the interval; the near-copies are neither validated ...
    assert len(judged) < 0.25 * len(off_judged)
    emptied = {seq for seq, n in parts.items() if n == 0}
    assert len(emptied) > 0.7 * scene.spec.frames
    assert not emptied & set(judged)  # a frame the gate dropped never reached the validator
    # ... nor stored, and every burst (a sudden change) still has a stored frame.
    assert not stored & emptied
    assert moments_kept(scene, stored) == len(scene.moments) == 2
    assert moments_kept(scene, off_stored) == 2
    counts = labeler.sift_counts()[STREAM]
    assert counts["gate_frames_dropped"] == len(emptied)
    assert counts["gate_dropped"] > 0 and counts["budget_refused"] == 0


def test_a_budget_refusal_stores_nothing_and_asks_the_validator_nothing(tmp_path: Path) -> None:
    # One frame a day: the day pool keeps its first offer; the night pool (30% of 1 rounds to 0) keeps none.
    scene, labeler, judged, parts, stored = label_static(tmp_path, novelty=False, minutes=0.5, daily_budget=1)
    assert stored == {0}
    assert set(judged) == {0}
    assert all(n == 0 for seq, n in parts.items() if seq > 0)
    counts = labeler.sift_counts()[STREAM]
    assert counts["budget_kept"] == 1
    assert counts["budget_refused"] == scene.spec.frames - 1


def test_the_counts_reach_the_metrics(tmp_path: Path) -> None:
    _, labeler, _, _, stored = label_static(tmp_path, novelty=True, minutes=0.5, daily_budget=2)
    counts = labeler.sift_counts()[STREAM]
    metrics = DaemonMetrics()
    metrics.bind(lambda: {"streams": {}, "sift": labeler.sift_counts()})
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert got[("streamlabel_novelty_parts_total", (("decision", "kept"), ("stream", STREAM)))] == counts["gate_kept"]
    dropped = got[("streamlabel_novelty_parts_total", (("decision", "dropped"), ("stream", STREAM)))]
    assert dropped == counts["gate_dropped"] > 0
    assert got[("streamlabel_novelty_frames_dropped_total", (("stream", STREAM),))] == counts["gate_frames_dropped"]
    refused = got[("streamlabel_budget_frames_total", (("decision", "refused"), ("stream", STREAM)))]
    assert refused == counts["budget_refused"] > 0
    kept = got[("streamlabel_budget_frames_total", (("decision", "kept"), ("stream", STREAM)))]
    assert kept == counts["budget_kept"] == len(stored) <= 2


@pytest.mark.parametrize("minutes", [2.0])
def test_the_static_benchmark_meets_its_goals_on_a_short_run(minutes: float) -> None:
    result = bench_static(seeds=1, minutes=minutes)
    on, off = result["gate_on"], result["gate_off"]
    assert on["frames"] == off["frames"] == round(minutes * 120)
    assert on["moments"] == 6 and result["moments_kept_share"] == 1.0
    assert result["fewer_validator_calls"] >= 0.75 and result["fewer_stored"] >= 0.75
    assert on["stored_frames"] < off["stored_frames"] and on["validator_calls"] < off["validator_calls"]


def test_the_budget_run_keeps_day_and_night_within_the_budget() -> None:
    result = bench_static(seeds=1, minutes=2.0, daily_budget=10)
    budget, on = result["budget"], result["gate_on"]
    assert budget["daily_budget"] == 10 and budget["frames"] == on["frames"] == 240
    assert budget["stored_frames"] == budget["stored_day"] + budget["stored_night"] <= 10
    assert budget["stored_day"] > 0 and budget["stored_night"] > 0 and budget["both_represented"]
    assert budget["within_budget"] and budget["refused"] > 0
    assert budget["stored_frames"] < on["stored_frames"]  # the budget refused some of what the gate sent on
    # Without a budget the report has no budget run.
    assert "budget" not in bench_static(seeds=1, minutes=0.5)


def test_a_spread_sequence_covers_one_utc_day_at_its_own_stream_rate() -> None:
    frames = StaticScene(StaticSceneSpec(minutes=1.0, seed=0, spread_over_day=True)).frames(STREAM)
    assert frames[0].time.date() == frames[-1].time.date()
    assert (frames[-1].time - frames[0].time).total_seconds() > 0.99 * 86_400
    assert frames[1].pts - frames[0].pts == pytest.approx(0.5)


def _tentative_result(ids: list[int] | None) -> FrameResult:
    image = np.zeros((48, 64, 3), np.uint8)
    anchors = sv.Detections(xyxy=np.array([[4.0, 4.0, 60.0, 44.0]]), tracker_id=np.array([1]))
    parts = sv.Detections(
        xyxy=np.array([[10.0, 10.0, 20.0, 20.0], [30.0, 10.0, 40.0, 20.0]]),
        tracker_id=None if ids is None else np.array(ids),
        data={ANCHOR_INDEX_KEY: np.array([0, 0])},
    )
    return FrameResult(Frame(STREAM, 0, 0.0, T0, image), anchors, parts)


@pytest.mark.parametrize(
    ("novelty", "ids", "kept"),
    [
        (True, [UNCONFIRMED, UNCONFIRMED], 0),  # tracking on, no confirmed part: nothing to judge yet
        (False, [UNCONFIRMED, UNCONFIRMED], 2),  # the gate off judges every part
        (True, None, 2),  # tracking off (no track ids): every part goes on
        (True, [UNCONFIRMED, 5], 0),  # a new track's first frame (min_track_frames 3) does not send it on
    ],
)
def test_frames_without_a_confirmed_part_track_go_on_only_without_the_gate(
    novelty: bool, ids: list[int] | None, kept: int
) -> None:
    sifter = Sifter(_config(novelty))
    r = _tentative_result(ids)
    sifter.sift(r, person=False)
    assert len(r.parts) == kept
    assert sifter.counts(STREAM)["gate_frames_dropped"] == (2 - kept) // 2


def test_the_busy_benchmark_meets_the_label_goals_with_the_gate_on() -> None:
    # The label-quality scenes (issue 12): dropping near-copies must not raise the share of wrong labels.
    result = bench_quality(seeds=3, frames=60, variants=[Variant("gate", tracking=True, novelty=True)])
    pooled = result["variants"][0]["figures"]["pooled"]
    assert pooled["precision"] >= GOAL_PRECISION and pooled["recall_passed"] >= 0.95
