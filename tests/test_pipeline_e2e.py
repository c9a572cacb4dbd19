"""The whole pipeline on a synthetic clip with tiny random-weight models through the real backends."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store.check import check_store
from streamlabel.tiny import TinyModels, tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, models: TinyModels, store: Path, validate_kind: str) -> Path:
    cfg = tiny_config_dict(models, store, {})
    cfg["tracking"] = {"novelty": {"enabled": False}}  # every frame is judged: the counts below (test_pipeline_novelty)
    if validate_kind == "scripted":
        cfg["models"]["validate"] = {"kind": "scripted"}
        cfg["target"]["validation"]["review_threshold"] = 0.8
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_label_writes_a_trainable_store(tmp_path: Path, tiny_models: TinyModels, scene_clip) -> None:
    from tests.scripted import register

    register()
    clip, _ = scene_clip
    store = tmp_path / "store"
    config = write_config(tmp_path / "c.yml", tiny_models, tmp_path / "unused", "scripted")
    result = CliRunner().invoke(app, ["label", f"kitchen={clip}", "-c", str(config), "--out", str(store), "--fps", "5"])
    assert result.exit_code == 0, result.output
    assert "streamlabel summary" in result.output
    # Store layout of ARCHITECTURE.md.
    assert (store / "data.yaml").is_file() and (store / "manifest.sqlite").is_file()
    # images/<train|val>/<stream>/<day>/ (docs/store.md); one camera-day lies in one subset.
    images = sorted(p for p in (store / "images").rglob("*.jpg") if "kitchen" in p.parts)
    labels = sorted(p for p in (store / "labels").rglob("*.txt") if "kitchen" in p.parts)
    # 2 s at 5 fps, every frame has an anchor with the tiny YOLO; the first one's dog is not a confirmed track yet, so
    # its passing parts go to review (an unpainted copy under review/) and the other 9 frames are in the dataset (the
    # novelty gate is off in this config).
    assert len(images) == len(labels) == 9
    assert [p.stem for p in images] == [p.stem for p in labels]
    # Every label file parses as YOLO-seg and the manifest agrees with the files.
    n_lines = 0
    for label in labels:
        for line in label.read_text().splitlines():
            cls, poly = parse_yolo_line(line)
            assert cls == 0 and len(poly) >= 3 and poly.min() >= 0 and poly.max() <= 1
            n_lines += 1
    assert check_store(store) == []
    db = sqlite3.connect(store / "manifest.sqlite")
    assert db.execute("SELECT COUNT(*) FROM frames WHERE split='dataset'").fetchone()[0] == len(images)
    assert db.execute("SELECT COUNT(*) FROM frames WHERE split='review'").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM labels WHERE status='accepted'").fetchone()[0] == n_lines > 0
    # Tracking is on by default: labels carry their part track (NULL while a track is not yet confirmed).
    track_ids = [t for (t,) in db.execute("SELECT track_id FROM labels")]
    confirmed = [t for t in track_ids if t is not None]
    assert all(t > 0 for t in confirmed)
    assert confirmed and len(set(confirmed)) < len(confirmed)  # some part track spans several stored frames
    (cfg_json, models_json) = db.execute("SELECT config, models FROM runs").fetchone()
    assert json.loads(models_json)["validate"] == "scripted-pass"
    assert json.loads(cfg_json)["target"]["part"]["prompt"] == "eye"
    assert yaml.safe_load((store / "data.yaml").read_text())["names"] == {0: "eye"}


@pytest.mark.slow
def test_selftest_runs_every_real_backend_offline(tmp_path: Path) -> None:
    out = tmp_path / "selftest"
    proc = subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "selftest", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "RANDOM weights" in text and "selftest passed" in text
    store = out / "store"
    assert check_store(store) == []
    db = sqlite3.connect(store / "manifest.sqlite")
    stages = json.loads(db.execute("SELECT models FROM runs").fetchone()[0])
    assert set(stages) >= {"detect", "ground", "segment", "validate"}
    # The random VLM is constrained to the verdict's JSON: every mask gets a parsed verdict (no raw text kept)
    # whose confidence comes from the checks' probabilities (parts the detector rejected were not asked).
    rows = db.execute("SELECT verdict_source, verdict_raw FROM labels WHERE verdict_source != 'detector'").fetchall()
    assert rows and all(source == "logprobs" and raw is None for source, raw in rows)
    # ... and some pass, so the whole path through an accepted label into images/, labels/ and an event is shown.
    accepted = db.execute("SELECT COUNT(*) FROM labels WHERE status = 'accepted'").fetchone()[0]
    assert accepted > 0 and f"{accepted} labels accepted into" in " ".join(text.split())
    assert "meaningless" in text
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'label'").fetchone()[0] > 0
    assert (out / "streamlabel.yml").is_file()  # the config it used, for `label` and `run` (README)


def test_missing_weights_give_one_clear_error(tmp_path: Path, scene_clip) -> None:
    clip, _ = scene_clip
    config = tmp_path / "c.yml"
    config.write_text("models:\n  detect:\n    weights: yolo11m-not-here.pt\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "label", str(clip), "-c", str(config), "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "yolo11m-not-here.pt" in proc.stderr and "streamlabel models pull" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = CliRunner().invoke(app, ["check", "-c", str(ROOT / "config" / "streamlabel.yml")])
    assert good.exit_code == 0, good.output
    bad = tmp_path / "bad.yml"
    bad.write_text("streams:\n  cam:\n    url: a.mp4\n    fps: -1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "check", "-c", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert f"{bad}:4: streams.cam.fps: Input should be greater than 0 (got -1)" in proc.stderr


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_unreachable_validator_keeps_every_candidate_pending(
    tmp_path: Path, tiny_models: TinyModels, scene_clip
) -> None:
    clip, _ = scene_clip
    store = tmp_path / "store"
    cfg = tiny_config_dict(tiny_models, store, {})
    cfg["tracking"] = {"novelty": {"enabled": False}}  # every sampled frame reaches the validator (counted below)
    cfg["models"]["validate"] = {
        "kind": "ollama",
        "host": f"http://127.0.0.1:{closed_port()}",
        "retries": 0,
        "timeout_s": 5,
    }
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["label", str(clip), "-c", str(config), "--fps", "2"])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store / "manifest.sqlite")
    statuses = {s for (s,) in db.execute("SELECT status FROM labels")}
    assert statuses == {"pending"}
    assert db.execute("SELECT COUNT(*) FROM frames WHERE split='pending'").fetchone()[0] == 4
    assert len(list((store / "pending" / "images").rglob("*.jpg"))) == 4
    assert check_store(store) == []
