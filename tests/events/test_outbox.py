"""The transactional outbox: each stored frame's event is committed with its rows, and events.jsonl delivers it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.events import open_sink
from streamlabel.events.jsonl import JsonlSink
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from tests.events.synth import frame_result


def new_store(root: Path, publish_rejected: bool = False) -> DatasetStore:
    store = DatasetStore(root, ["eye"], publish_rejected=publish_rejected)
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    return store


def outbox(store: DatasetStore) -> list[sqlite3.Row]:
    return store.manifest.query("SELECT * FROM outbox ORDER BY seq")


@pytest.mark.parametrize(
    ("statuses", "publish_rejected", "kinds"),
    [
        ([], True, []),
        (["accepted"], False, ["label"]),
        (["accepted", "rejected"], False, ["label"]),
        (["accepted", "rejected"], True, ["label", "rejected"]),
        (["review", "accepted"], False, ["label", "review"]),  # dataset copy and review copy
        (["rejected"], False, []),
        (["rejected"], True, ["rejected"]),
        (["accepted", "pending"], True, ["label"]),  # pending: its event comes when it is judged
        (["review", "pending"], True, []),
    ],
)
def test_events_of_a_frame(tmp_path: Path, statuses: list[str], publish_rejected: bool, kinds: list[str]) -> None:
    store = new_store(tmp_path, publish_rejected)
    stored = store.write(frame_result(statuses), "c")
    rows = outbox(store)
    assert [r["kind"] for r in rows] == kinds
    assert [r["id"] for r in rows] == list(stored.event_ids if stored else ())
    for r in rows:
        payload = json.loads(r["payload"])
        assert payload["id"] == r["id"] and payload["v"] == 1 and payload["kind"] == r["kind"]
        assert r["topic"] == f"cam/{r['kind']}" and r["delivered"] is None
        assert r["qos"] == (0 if r["kind"] == "rejected" else 1) and r["retain"] == 0


def test_label_event_describes_the_stored_label(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = store.write(frame_result(["accepted", "rejected", "accepted"], seq=3), "c")
    (row,) = outbox(store)
    event = json.loads(row["payload"])
    assert event["frame_id"] == stored.frame_id == row["frame_id"]
    assert event["image"] == str(stored.image.relative_to(tmp_path))
    assert event["label"] == str(stored.label.relative_to(tmp_path))
    assert event["time"] == "2026-11-22T10:00:01.500+00:00"
    assert [p["status"] for p in event["parts"]] == ["accepted", "accepted"]  # the label file's lines, in order
    first = event["parts"][0]
    assert first["polygon"] == [[0.0625, 0.083333], [0.1875, 0.083333], [0.1875, 0.25], [0.0625, 0.25]]
    assert first["box"] == [0.0625, 0.083333, 0.1875, 0.25] and first["track_id"] == 1
    assert first["verdict"] == {
        "passed": True,
        "confidence": 0.9,
        "confidence_source": "stated",
        "checks": {"eye_open": True},
        "reason": "looks fine",
        "model": "tiny",
        "reused": False,
    }
    lines = stored.label.read_text().splitlines()
    assert len(lines) == len(event["parts"]) == 2


def test_rejected_event_gives_reasons(tmp_path: Path) -> None:
    store = new_store(tmp_path, publish_rejected=True)
    store.write(frame_result(["rejected"]), "c")
    (row,) = outbox(store)
    assert json.loads(row["payload"])["reasons"] == ["failed: eye_open; looks fine"]


def test_a_failed_transaction_leaves_neither_rows_nor_event_nor_files(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write(frame_result(["accepted"], seq=1), "c")
    assert store.write(frame_result(["accepted"], seq=1), "c") is None  # same frame id: skipped, nothing written
    assert len(outbox(store)) == 1
    with pytest.raises(sqlite3.IntegrityError):
        store.write(frame_result(["accepted"], seq=2), "unknown-config-hash")  # foreign key: nothing committed
    assert len(outbox(store)) == 1
    assert store.manifest.query("SELECT COUNT(*) FROM frames")[0][0] == 1
    store.close()
    assert check_store(tmp_path) == []  # the refused frame's files were removed again


def test_check_store_finds_a_label_without_its_event(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = store.write(frame_result(["accepted"]), "c")
    with store.manifest.transaction() as db:
        db.execute("DELETE FROM outbox")
    store.close()
    assert check_store(tmp_path) == [f"{stored.frame_id}: dataset frame without its label event in the outbox"]


def test_open_sink_picks_mqtt_or_jsonl(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert isinstance(open_sink(Config(), store.manifest), JsonlSink)
    assert isinstance(open_sink(Config(mqtt={"host": "127.0.0.1"}), store.manifest), MqttPublisher)


def test_jsonl_sink_writes_every_event_once_in_order(tmp_path: Path) -> None:
    store = new_store(tmp_path, publish_rejected=True)
    sink = open_sink(Config(), store.manifest)
    sink.start()
    ids = []
    for seq in range(30):
        ids += store.write(frame_result(["accepted", "rejected"] if seq % 3 else ["review"], seq=seq), "c").event_ids
        sink.wake()
    sink.stream_status("cam", "finished")
    sink.stop(30.0)
    assert sink.depth() == 0
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in lines if e["kind"] != "status"] == ids
    assert lines[-1]["kind"] == "status" and lines[-1]["status"] == "finished"
    delivered = store.manifest.query("SELECT COUNT(*) FROM outbox WHERE delivered IS NOT NULL")[0][0]
    assert delivered == len(ids) == sink.delivered


def test_jsonl_sink_picks_up_rows_left_from_an_earlier_run(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    ids = [store.write(frame_result(["accepted"], seq=s), "c").event_ids[0] for s in range(5)]
    store.manifest.mark_delivered([1, 2])  # delivered by the previous run
    assert store.manifest.outbox_depth() == 3
    sink = JsonlSink(store.manifest, tmp_path / "events.jsonl")
    assert sink.drain() == 3
    assert [json.loads(x)["id"] for x in (tmp_path / "events.jsonl").read_text().splitlines()] == ids[2:]
    assert sink.drain() == 0
