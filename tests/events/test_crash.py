"""SIGKILL mid-run: manifest and files agree after the restart, and the undelivered events are delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamlabel.config import MqttConfig
from streamlabel.events.jsonl import JsonlSink
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store import DatasetStore, atomic_write
from streamlabel.store.check import check_store
from streamlabel.store.dataset import INTENT_FILE
from tests.events.synth import Subscriber, first_seen, frame_result
from tests.events.test_mqtt import wait_until
from tests.fixtures.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
FRAMES_BEFORE_KILL = 40


def run_and_kill(store: Path, *args: str) -> int:
    """Start the crash writer, SIGKILL it once it committed FRAMES_BEFORE_KILL frames; returns frames it reported."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.events.crash_writer", str(store), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    wrote = 0
    try:
        for line in proc.stdout:  # blocks on the child's output; a dead child ends the loop
            wrote = int(line.split()[1])
            if wrote >= FRAMES_BEFORE_KILL:
                break
    finally:
        proc.kill()  # SIGKILL, in the middle of the next write
        proc.wait(30)
    assert wrote >= FRAMES_BEFORE_KILL, "the writer died before it was killed"
    return wrote


def reopen(root: Path) -> DatasetStore:
    """What a restarted daemon does first: open the store (which undoes a write the kill cut short)."""
    store = DatasetStore(root, ["eye"])
    store.close()
    assert check_store(root) == []
    return DatasetStore(root, ["eye"])


def assert_every_frame_has_one_event(store: DatasetStore) -> list[str]:
    rows = store.manifest.query("SELECT frame_id, id FROM outbox ORDER BY seq")
    frames = store.manifest.query("SELECT frame_id FROM frames")
    assert sorted(r["frame_id"] for r in rows) == sorted(r["frame_id"] for r in frames)
    return [r["id"] for r in rows]


def test_sigkill_then_jsonl_sink_delivers_the_rest(tmp_path: Path) -> None:
    wrote = 0
    for _ in range(3):  # killed, restarted where it stopped, killed again
        wrote += run_and_kill(tmp_path)
        reopen(tmp_path).close()
    store = DatasetStore(tmp_path, ["eye"])
    ids = assert_every_frame_has_one_event(store)
    assert len(ids) >= wrote >= 3 * FRAMES_BEFORE_KILL
    sink = JsonlSink(store.manifest, tmp_path / "events.jsonl")
    sink.drain()
    assert store.manifest.outbox_depth() == 0
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert first_seen([e["id"] for e in lines]) == ids  # every event, in order; a repeat at most at the kill point


def test_sigkill_then_mqtt_publisher_delivers_the_rest(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, "crash/#")
    try:
        run_and_kill(tmp_path, str(mosquitto.port))
        store = reopen(tmp_path)
        ids = assert_every_frame_has_one_event(store)
        pub = MqttPublisher(
            MqttConfig(host=mosquitto.host, port=mosquitto.port, prefix="crash", client_id="after-crash"),
            store.manifest,
        )
        pub.start()
        try:
            assert wait_until(lambda: store.manifest.outbox_depth() == 0)
        finally:
            pub.stop(10.0)
        assert sub.wait_for(lambda m: set(first_seen([e["id"] for e in sub.events()])) >= set(ids))
        labels = [e for e in sub.events() if e.get("kind") in ("label", "review")]
        assert first_seen([e["id"] for e in labels]) == ids
    finally:
        sub.close()


@pytest.mark.parametrize("committed", [False, True])
def test_open_undoes_a_write_cut_short(tmp_path: Path, committed: bool) -> None:
    store = DatasetStore(tmp_path, ["eye"])
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    result = frame_result(["accepted"], seq=7)
    image_rel, label_rel = store.relpaths(result, "dataset")
    if committed:
        store.write(result, "c")
        (tmp_path / INTENT_FILE).write_text(json.dumps({"frame_id": result.frame.frame_id, "files": [image_rel]}))
    else:
        # killed before the commit: the intent names the files, both are written, the rows are not
        (tmp_path / INTENT_FILE).write_text(
            json.dumps({"frame_id": result.frame.frame_id, "files": [image_rel, label_rel]})
        )
        atomic_write(tmp_path / image_rel, b"jpg")
        atomic_write(tmp_path / label_rel, b"0 0.1 0.1 0.2 0.1 0.2 0.2\n")
    tmp = tmp_path / Path(image_rel).parent / f".{Path(image_rel).name}.abc.tmp"  # an atomic_write cut short
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"half")
    store.close()
    assert check_store(tmp_path) != []
    reopened = DatasetStore(tmp_path, ["eye"])
    assert reopened.recovered == ([] if committed else [image_rel, label_rel])
    assert (tmp_path / image_rel).is_file() == committed
    assert not tmp.exists() and not (tmp_path / INTENT_FILE).exists()
    reopened.close()
    assert check_store(tmp_path) == []
