"""MQTT v5: a message the broker refuses (PUBACK reason code >= 0x80) is not marked delivered; it is sent again, in
order, once the broker takes it. The order guarantee of docs/events.md: the last copy of every event comes after a
copy of every older event."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from streamlabel.config import MqttConfig
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store import DatasetStore
from tests.events.synth import Subscriber, frame_result
from tests.fixtures.mosquitto import Mosquitto

PREFIX = "slacl"
DENY_REVIEW = ["topic readwrite #", f"topic deny {PREFIX}/cam/review"]
ALLOW_ALL = ["topic readwrite #"]


def wait_until(cond, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def undelivered(store: DatasetStore) -> list[str]:
    return [r["kind"] for r in store.manifest.query("SELECT kind FROM outbox WHERE delivered IS NULL ORDER BY seq")]


def test_refused_event_is_sent_again_in_order(tmp_path: Path, mosquitto_factory: type[Mosquitto]) -> None:
    broker = mosquitto_factory(acl=DENY_REVIEW).start()
    store = DatasetStore(tmp_path / "store", ["eye"])
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    for seq, status in enumerate(["accepted", "review", "accepted", "accepted"]):
        store.write(frame_result([status], seq=seq), "c")
    ids = [r["id"] for r in store.manifest.query("SELECT id FROM outbox ORDER BY seq")]
    sub = Subscriber(broker.host, broker.port, f"{PREFIX}/#")
    cfg = MqttConfig(
        host=broker.host, port=broker.port, prefix=PREFIX, client_id="refused", protocol="5", reconnect_max_s=1
    )
    pub = MqttPublisher(cfg, store.manifest)
    pub.start()
    try:
        # Mosquitto 2.0 answers a denied QoS 1 publish with PUBACK 0x87 and then drops the connection: either way
        # the publisher must keep the row, and every row after it, undelivered, and try again from it.
        assert wait_until(lambda: broker.log_tail(100_000).count("Denied PUBLISH") >= 3)
        assert undelivered(store)[-3:] == ["review", "label", "label"]
        broker.set_acl(ALLOW_ALL)
        assert wait_until(lambda: not undelivered(store))
        assert sub.wait_for(lambda m: ids[-1] in {e["id"] for e in sub.events()})
    finally:
        pub.stop(10.0)
        sub.close()
    seen = [e["id"] for e in sub.events() if e.get("id") in ids]
    assert set(seen) == set(ids)
    last_copy = {event_id: i for i, event_id in enumerate(seen)}
    for older, newer in itertools.pairwise(ids):
        assert older in seen[: last_copy[newer]], (older, newer, seen)
