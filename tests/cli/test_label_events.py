"""``streamlabel label`` delivers the events of its run (MQTT when configured, else events.jsonl) and says so."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamlabel.tiny import TinyModels, tiny_config_dict
from tests.events.synth import Subscriber
from tests.fixtures.mosquitto import Mosquitto


def label(clip: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "label", f"kitchen={clip}", "-c", str(config), "--fps", "5"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "250"},
    )


def outbox(store: Path) -> tuple[list[str], int]:
    """Every outbox row's id (in order) and how many are still undelivered."""
    db = sqlite3.connect(store / "manifest.sqlite")
    ids = [i for (i,) in db.execute("SELECT id FROM outbox ORDER BY seq")]
    left = db.execute("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL").fetchone()[0]
    db.close()
    return ids, left


def write_config(tmp_path: Path, tiny_models: TinyModels, mqtt: dict | None = None) -> tuple[Path, Path]:
    store = tmp_path / "store"
    cfg = tiny_config_dict(tiny_models, store, {})
    cfg["tracking"] = {"clip_min_s": 0.0}  # clips of the short scene's tracks, so that clip events exist
    if mqtt:
        cfg["mqtt"] = mqtt
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(cfg))
    return config, store


@pytest.mark.slow
def test_label_writes_every_event_to_events_jsonl(tmp_path: Path, tiny_models: TinyModels, scene_clip) -> None:
    clip, _ = scene_clip
    config, store = write_config(tmp_path, tiny_models)
    run = label(clip, config)
    assert run.returncode == 0, run.stderr[-3000:]
    ids, left = outbox(store)
    assert ids and left == 0
    lines = [json.loads(line) for line in (store / "events.jsonl").read_text().splitlines()]
    stored = [e["id"] for e in lines if e["kind"] not in ("status", "stats")]  # status lines are not outbox rows
    assert stored == ids  # every row, in outbox order, clip events included
    assert any(e["kind"] == "clip" for e in lines)
    assert f"{len(ids)} delivered to {store / 'events.jsonl'}" in run.stderr


@pytest.mark.slow
def test_label_publishes_to_the_configured_broker(
    tmp_path: Path, tiny_models: TinyModels, scene_clip, mosquitto: Mosquitto
) -> None:
    clip, _ = scene_clip
    mqtt = {"host": mosquitto.host, "port": mosquitto.port, "client_id": "streamlabel-label-test"}
    config, store = write_config(tmp_path, tiny_models, mqtt)
    sub = Subscriber(mosquitto.host, mosquitto.port, "streamlabel/#")
    try:
        run = label(clip, config)
        assert run.returncode == 0, run.stderr[-3000:]
        ids, left = outbox(store)
        assert ids and left == 0
        assert sub.wait_for(lambda m: len({e["id"] for e in sub.events() if "id" in e}) >= len(ids))
    finally:
        sub.close()
    assert {e["id"] for e in sub.events() if "id" in e} >= set(ids)
    assert f"{len(ids)} delivered to MQTT {mosquitto.host}:{mosquitto.port}" in run.stderr
    assert not (store / "events.jsonl").exists()
