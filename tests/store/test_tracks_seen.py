"""The ``tracks_seen`` table (issue 14): every part track the Labeler saw is recorded, kept frame or not.

The Labeler runs its real code on the benchmark's static scene with the scripted stages (as in
tests/test_pipeline_novelty.py), and a small loop writes each batch's results to the store and its sightings to
``TracksSeen``, as ``Runner._finish`` does; one test drives the Runner itself over a clip.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamlabel.bench.quality import STREAM, Variant
from streamlabel.bench.quality_scene import SceneBook
from streamlabel.bench.quality_stages import StageErrors, register_bench_stages
from streamlabel.bench.quality_static import StaticScene, StaticSceneSpec
from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Runtime
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.manifest import Manifest
from streamlabel.store.report import build_report
from streamlabel.store.tracks_seen import Sightings, TracksSeen, has_tracks_seen
from tests.daemon.test_overlap import EveryFrame
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter

CLEAN = StageErrors(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def rows_of(root: Path) -> list[dict[str, Any]]:
    manifest = Manifest(root / "manifest.sqlite")
    try:
        return [dict(r) for r in manifest.query("SELECT * FROM tracks_seen ORDER BY run, stream, track_id")]
    finally:
        manifest.close()


def label_static(root: Path, novelty: bool, minutes: float = 0.5, **store: Any) -> tuple[Labeler, dict[int, int]]:
    """Label the static scene into a store at ``root`` batch by batch, writing the sightings after each batch;
    returns the Labeler and, per part track, how many frame results still carried a part of it (kept frames)."""
    scene = StaticScene(StaticSceneSpec(minutes=minutes, bursts=2, seed=3))
    register_bench_stages(SceneBook([scene]), CLEAN, seed=3)
    cfg = Variant("test", tracking=True, novelty=novelty).config(people=True)
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update=store)})
    stages = Stages.build(cfg, Runtime())
    labeler = Labeler(cfg, stages)
    labeler.sifter.record_sightings = True
    store_ = DatasetStore.from_config(cfg, root)
    store_.manifest.record_run(cfg.digest(), cfg.model_dump(mode="json", by_alias=True), stages.model_ids())
    writer = TracksSeen(store_.manifest, "2026-11-20T08:00:00+00:00")
    kept: Counter[int] = Counter()
    frames = scene.frames(STREAM)
    for i in range(0, len(frames), cfg.models.batch_size):
        for result in labeler.label(frames[i : i + cfg.models.batch_size]):
            if result.parts.tracker_id is not None:
                kept.update(t for t in set(result.parts.tracker_id.tolist()) if t >= 0)
            store_.write(result, cfg.digest())
        writer.write(labeler.take_sightings())
    store_.close()
    assert check_store(root) == []
    return labeler, dict(kept)


def test_a_still_dogs_dropped_frames_are_recorded_as_seen(tmp_path: Path) -> None:
    labeler, kept = label_static(tmp_path / "store", novelty=True)
    rows = rows_of(tmp_path / "store")
    counts = labeler.sift_counts()[STREAM]
    assert counts["gate_frames_dropped"] > 0
    # One row per part track (the batches' sightings merged), each with exactly the frames that went on.
    assert len({(r["stream"], r["track_id"]) for r in rows}) == len(rows) > 0
    assert {r["track_id"]: r["frames_kept"] for r in rows if r["frames_kept"]} == kept
    # The gate's dropped frames are there: every dropped frame had a confirmed track that saw it.
    dropped = sum(r["frames_seen"] - r["frames_kept"] for r in rows)
    assert dropped >= counts["gate_frames_dropped"]
    # A track seen on after its last kept frame (a still eye): last_time is past the last stored frame's time.
    stored = store_times(tmp_path / "store")
    still = max(rows, key=lambda r: r["frames_seen"] - r["frames_kept"])
    assert still["last_time"] > max(stored[still["track_id"]])
    assert still["first_time"] <= min(stored[still["track_id"]])
    assert labeler.take_sightings() == []  # taken: the next batch starts a new record


def store_times(root: Path) -> dict[int, list[str]]:
    manifest = Manifest(root / "manifest.sqlite")
    try:
        out: dict[int, list[str]] = {}
        sql = "SELECT l.track_id, f.time FROM labels l JOIN frames f ON f.frame_id = l.frame_id"
        for r in manifest.query(sql):
            if r["track_id"] is not None:
                out.setdefault(int(r["track_id"]), []).append(datetime.fromisoformat(r["time"]).isoformat())
        return out
    finally:
        manifest.close()


def test_tracks_the_budget_refused_entirely_are_in_the_report(tmp_path: Path) -> None:
    # One frame a day: the first (untracked) frame is kept, every confirmed track's frames are refused.
    labeler, kept = label_static(tmp_path / "store", novelty=False, minutes=0.25, daily_budget=1)
    assert kept == {} and labeler.sift_counts()[STREAM]["budget_refused"] > 0
    rows = rows_of(tmp_path / "store")
    assert rows and all(r["frames_kept"] == 0 for r in rows)
    report = build_report(tmp_path / "store", cache=False)
    seen = report["tracks_seen"][STREAM]
    assert seen["tracks"] == seen["tracks_without_kept_frame"] == len(rows)
    assert seen["frames_seen"] == sum(r["frames_seen"] for r in rows) > 0 and seen["frames_kept"] == 0
    assert report["tracks"] == {}  # no accepted label of any track: without the table they would be invisible


def test_writes_merge_per_run_and_keep_runs_apart(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "manifest.sqlite")
    assert not has_tracks_seen(manifest)
    sightings = Sightings()
    sightings.add("cam", T0 + timedelta(seconds=1), [3, 4, -1], kept=True)
    sightings.add("cam", T0, [3, 3], kept=False)  # one frame counts once per track; out of order is fine
    first = sightings.take()
    assert [(s.track_id, s.frames_seen, s.frames_kept) for s in first] == [(3, 2, 1), (4, 1, 1)]
    assert len(sightings) == 0
    writer = TracksSeen(manifest, "run-a")
    assert has_tracks_seen(manifest) and writer.write(first) == 2 and writer.write([]) == 0
    sightings.add("cam", T0 + timedelta(seconds=9), [3], kept=False)
    writer.write(sightings.take())
    TracksSeen(manifest, "run-b").write(first[:1])  # the next run's track 3 is another track
    rows = [dict(r) for r in manifest.query("SELECT * FROM tracks_seen ORDER BY run, track_id")]
    manifest.close()
    assert [(r["run"], r["track_id"], r["frames_seen"], r["frames_kept"]) for r in rows] == [
        ("run-a", 3, 3, 1),
        ("run-a", 4, 1, 1),
        ("run-b", 3, 2, 1),
    ]
    assert rows[0]["first_time"] == T0.isoformat() and rows[0]["last_time"] == (T0 + timedelta(seconds=9)).isoformat()


def test_the_runner_writes_the_sightings_of_each_batch(tmp_path: Path, scene_clip) -> None:
    clip, _ = scene_clip
    cfg = Config.model_validate(
        {
            "streams": {"cam": {"url": str(clip), "fps": 5, "queue_size": 32}},
            "models": {"batch_size": 2},
            "tracking": {"enabled": True, "novelty": {"enabled": True}},
        }
    )
    store = DatasetStore(tmp_path / "store", ["eye"])
    validator = CountingValidator()
    stages = Stages(ScriptedDetector(EveryFrame()), ScriptedGrounder(), ScriptedSegmenter(), validator)
    runner = Runner(cfg, stages, store)
    runner.start()
    deadline = time.monotonic() + 30
    while runner.readers["cam"].is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.run_until_done()
    counts = runner.labeler.sift_counts()["cam"]
    store.close()
    rows = rows_of(tmp_path / "store")
    assert rows and {r["run"] for r in rows} == {runner.tracks_seen.run}
    labels = Counter(r["track_id"] for r in label_rows(tmp_path / "store"))
    assert {r["track_id"]: r["frames_kept"] for r in rows} == {t: n for t, n in labels.items() if t is not None}
    assert sum(r["frames_seen"] - r["frames_kept"] for r in rows) >= counts["gate_frames_dropped"] > 0


def label_rows(root: Path) -> list[dict[str, Any]]:
    manifest = Manifest(root / "manifest.sqlite")
    try:
        return [dict(r) for r in manifest.query("SELECT track_id FROM labels")]
    finally:
        manifest.close()
