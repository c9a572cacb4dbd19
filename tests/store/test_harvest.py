"""Harvest: clips, sidecars and their labeled frames copied into a folder a training job can take as is."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.config import Config
from streamlabel.store.clips import ClipWriter
from streamlabel.store.export import ExportError
from streamlabel.store.harvest import harvest_clips
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

CFG = Config.model_validate({"tracking": {"clip_pre_s": 0.5, "clip_post_s": 0.5}})


def write_clip(store, stream: str, track_id: int, first_seq: int, statuses: list[list[str]], offset_s: float = 0):
    """Store a run of frames of one track and cut its clip (encode path); returns the ClipRecord."""
    results = []
    for k, st in enumerate(statuses):
        seq = first_seq + k
        when = T0 + timedelta(seconds=offset_s + seq * 0.5)
        results.append(make_result(stream, seq, st, when=when, track_ids=[track_id] * len(st)))
        store.write(results[-1], CONFIG_HASH)
    first, last = results[0].frame, results[-1].frame
    seg = TrackSegment(stream, track_id, "dog", first.pts, last.pts, first.time, last.time,
                       tuple(r.frame.frame_id for r in results))  # fmt: skip
    return ClipWriter(store, CFG).write(seg, None, [r.frame for r in results])


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    store = new_store(root)
    write_clip(store, "cam", 1, 0, [["accepted"], ["accepted", "accepted"], ["review"]])  # 3 accepted labels
    write_clip(store, "cam", 2, 10, [["review"], ["accepted"]])  # 1 accepted label
    write_clip(store, "yard", 1, 0, [["accepted"]] * 2, offset_s=3600)
    store.close()
    return root


def test_harvest_copies_clips_sidecars_and_frames(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "h"
    report = harvest_clips(store_root, out, stream="cam", min_labels=2)
    assert (report.clips, report.frames, report.labels) == (1, 2, 3)
    doc = json.loads((out / "manifest.json").read_text())
    (clip,) = doc["clips"]
    assert clip["track_id"] == 1 and clip["labels"] == 3
    assert (out / clip["video"]).stat().st_size > 0 and (out / clip["sidecar"]).is_file()
    # Only the dataset frames of the clip are training frames; the review one stays in the sidecar only.
    assert len(clip["frames"]) == 2
    for f in clip["frames"]:
        assert (out / f["image"]).is_file() and (out / f["label"]).read_text().count("\n") >= 1
    sidecar = json.loads((out / clip["sidecar"]).read_text())
    assert len(sidecar["frames"]) == 3
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "images" and data["names"] == {0: "eye"}
    assert "1 clips, 2 frames, 3 labels" in (out / "README.txt").read_text()


def test_harvest_selection(store_root: Path, tmp_path: Path) -> None:
    assert harvest_clips(store_root, tmp_path / "a").clips == 3
    assert harvest_clips(store_root, tmp_path / "b", since=T0 + timedelta(minutes=30)).clips == 1
    assert harvest_clips(store_root, tmp_path / "c", min_labels=10).clips == 0
    assert json.loads((tmp_path / "c/manifest.json").read_text())["clips"] == []
    with pytest.raises(ExportError, match="no store"):
        harvest_clips(tmp_path / "nothing", tmp_path / "d")


def test_cli_harvest(store_root: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"store:\n  path: {store_root}\n")
    runner = CliRunner()
    res = runner.invoke(app, ["harvest", "-c", str(cfg), "--out", str(tmp_path / "h"), "--stream", "yard"])
    assert res.exit_code == 0, res.output
    assert "harvested 1 clips with 2 frames and 2 labels" in res.output
    res = runner.invoke(app, ["harvest", "-c", str(cfg), "--out", str(tmp_path / "h2"), "--since", "soon"])
    assert res.exit_code != 0 and "not an ISO 8601" in res.output
