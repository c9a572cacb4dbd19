"""The MQTT publisher against a real Mosquitto: every label once, nothing lost across a broker restart, auth, will."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamlabel.config import MqttConfig
from streamlabel.events.models import new_event_id
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store import DatasetStore
from tests.events.synth import Subscriber, first_seen, frame_result
from tests.fixtures.mosquitto import Mosquitto

PREFIX = "sltest"
DEADLINE_S = 60.0


def mqtt_cfg(broker: Mosquitto, **kw: object) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, prefix=PREFIX, client_id=f"pub-{time.monotonic_ns()}", **kw)


def new_store(root: Path) -> DatasetStore:
    store = DatasetStore(root, ["eye"], publish_rejected=True)
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    return store


def wait_until(cond, timeout_s: float = DEADLINE_S) -> bool:
    """Poll ``cond`` with a deadline (the publisher thread offers no event for 'delivered')."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def outbox_ids(store: DatasetStore, kinds: tuple[str, ...] = ("label", "review")) -> list[str]:
    marks = ",".join("?" * len(kinds))
    return [r["id"] for r in store.manifest.query(f"SELECT id FROM outbox WHERE kind IN ({marks}) ORDER BY seq", kinds)]


def test_every_stored_label_yields_exactly_one_event(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{PREFIX}/#")
    store = new_store(tmp_path)
    pub = MqttPublisher(mqtt_cfg(mosquitto), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected)
        pub.stream_status("cam", "online")
        for seq in range(40):
            statuses = ["accepted", "rejected"] if seq % 4 else ["review"]
            store.write(frame_result(statuses, seq=seq, stream="cam" if seq % 2 else "yard"), "c")
            pub.wake()
        expected = outbox_ids(store)
        assert sub.wait_for(lambda m: len(sub.events("/label")) + len(sub.events("/review")) >= len(expected))
        assert wait_until(lambda: pub.depth() == 0)
    finally:
        pub.stop(20.0)
        sub.close()
    seen = [e["id"] for e in sub.events("/label") + sub.events("/review")]
    assert sorted(seen) == sorted(expected)  # exactly one event id per stored label, no repeat on a calm run
    labels = store.manifest.query("SELECT frame_id FROM frames WHERE split IN ('dataset', 'review')")
    assert {e["frame_id"] for e in sub.events("/label") + sub.events("/review")} == {r["frame_id"] for r in labels}
    assert len(sub.events("/rejected")) == 30  # QoS 0, published because publish_rejected is set
    assert sub.payloads(f"{PREFIX}/available")[0] == b"online"
    assert sub.payloads(f"{PREFIX}/available")[-1] == b"offline"  # clean stop
    assert json.loads(sub.payloads(f"{PREFIX}/cam/status")[-1])["status"] == "online"
    assert pub.delivered == store.manifest.query("SELECT COUNT(*) FROM outbox")[0][0]


def test_broker_restart_loses_nothing_and_keeps_order(
    tmp_path: Path, mosquitto_factory: type[Mosquitto], capsys: pytest.CaptureFixture[str]
) -> None:
    broker = mosquitto_factory(persistence=True).start()
    sub = Subscriber(broker.host, broker.port, f"{PREFIX}/#", session="restart-sub")
    store = new_store(tmp_path)
    pub = MqttPublisher(mqtt_cfg(broker, reconnect_max_s=2.0), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected)
        seq = 0

        def write(n: int) -> None:
            nonlocal seq
            for _ in range(n):
                store.write(frame_result(["accepted"], seq=seq, stream=("a", "b")[seq % 2]), "c")
                seq += 1
                pub.wake()

        write(100)
        broker.stop()  # mid-run: rows may be in flight, unacknowledged
        down = time.monotonic()
        assert wait_until(lambda: not pub.connected)
        write(100)  # the labeler keeps storing while the broker is away
        time.sleep(3.0)  # a broker outage of several seconds (this is the scenario, not a wait for a thread)
        broker.start()
        up = time.monotonic()
        assert wait_until(lambda: pub.connected)
        reconnected = time.monotonic()
        assert wait_until(lambda: pub.depth() == 0)
        drained = time.monotonic()
        write(100)
        assert wait_until(lambda: pub.depth() == 0)
        expected = outbox_ids(store)
        assert sub.wait_for(lambda m: set(first_seen([e["id"] for e in sub.events("/label")])) >= set(expected))
    finally:
        pub.stop(20.0)
        sub.close()
    events = sub.events("/label")
    assert set(first_seen([e["id"] for e in events])) == set(expected)  # zero lost
    for stream in ("a", "b"):
        got = first_seen([e["id"] for e in events if e["stream"] == stream])
        assert got == [i for i in outbox_ids(store) if i in set(got)]  # order kept per stream
        seqs = [e["seq"] for e in events if e["stream"] == stream]
        assert first_seen(seqs) == sorted(set(seqs))
    with capsys.disabled():
        print(
            f"\n[figures] outage {up - down:.1f} s; reconnected {reconnected - up:.2f} s after the broker came back; "
            f"what waited was delivered {drained - up:.2f} s after it; {len(events) - len(expected)} duplicate(s) of "
            f"{len(expected)} events"
        )


def test_status_and_availability_are_published_again_after_a_broker_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    store = new_store(tmp_path)
    pub = MqttPublisher(mqtt_cfg(mosquitto, reconnect_max_s=0.5), store.manifest)
    pub.start()
    try:
        pub.stream_status("cam", "reconnecting", "rtsp: connection refused")
        assert wait_until(lambda: pub.connected)
        first = pub.connects
        mosquitto.kill()  # no persistence: the broker forgets every retained message
        mosquitto.start()
        assert wait_until(lambda: pub.connects > first and pub.connected)
        late = Subscriber(mosquitto.host, mosquitto.port, f"{PREFIX}/#")
        try:
            assert late.wait_for(lambda m: len(m) >= 2)
            retained = {t: (p, r) for t, p, r in late.messages}
        finally:
            late.close()
    finally:
        pub.stop(5.0)
    assert retained[f"{PREFIX}/available"] == (b"online", True)
    status, retain = retained[f"{PREFIX}/cam/status"]
    assert retain and json.loads(status)["status"] == "reconnecting"


def test_wrong_password_logs_a_clear_error_and_retries(
    tmp_path: Path, mosquitto_factory: type[Mosquitto], caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory(users={"streamlabel": "right"}).start()
    store = new_store(tmp_path)
    store.write(frame_result(["accepted"]), "c")
    caplog.set_level(logging.DEBUG, logger="streamlabel.events.mqtt")
    pub = MqttPublisher(mqtt_cfg(broker, username="streamlabel", password="wrong", reconnect_max_s=0.2), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: len([r for r in caplog.records if "refused" in r.getMessage()]) >= 3)
        assert not pub.connected and pub.connects == 0
        assert pub._thread is not None and pub._thread.is_alive()  # still retrying, no crash
    finally:
        pub.stop(2.0)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    errors = [r for r in refused if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one clear error line, repeats only at DEBUG"
    message = errors[0].getMessage()
    assert "Not authorized" in message and "mqtt.username and mqtt.password" in message and "wrong" not in message
    assert store.manifest.outbox_depth() == 1  # nothing marked delivered that was not
    # the right password then delivers what waited
    good = MqttPublisher(mqtt_cfg(broker, username="streamlabel", password="right"), store.manifest)
    good.start()
    try:
        assert wait_until(lambda: store.manifest.outbox_depth() == 0)
        assert good.connected
    finally:
        good.stop(5.0)


def test_unreachable_broker_is_not_reported_connected(tmp_path: Path, mosquitto: Mosquitto) -> None:
    store = new_store(tmp_path)
    mosquitto.kill()
    pub = MqttPublisher(mqtt_cfg(mosquitto, reconnect_max_s=0.2), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: pub.last_error is not None)
        assert "cannot connect" in pub.last_error and not pub.connected
        mosquitto.start()
        assert wait_until(lambda: pub.connected)
    finally:
        pub.stop(5.0)


PUBLISHER = """
import sys, time
from pathlib import Path
from streamlabel.config import MqttConfig
from streamlabel.events.models import new_event_id
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store.manifest import Manifest
pub = MqttPublisher(MqttConfig(host='127.0.0.1', port=int(sys.argv[1]), prefix=sys.argv[2], client_id='will-test'),
                    Manifest(Path(sys.argv[3]) / 'manifest.sqlite'))
pub.start()
while not pub.connected:
    time.sleep(0.02)
print('CONNECTED', flush=True)
sys.stdin.read()
"""


def test_last_will_says_offline_when_the_publisher_dies(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{PREFIX}/available")
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(mosquitto.port), PREFIX, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "CONNECTED"
        assert sub.wait_for(lambda m: any(p == b"online" for _, p, _ in m))
        proc.kill()  # SIGKILL: no DISCONNECT, no offline; the socket just dies
        proc.wait(30)
        assert sub.wait_for(lambda m: m[-1][1] == b"offline"), sub.messages
    finally:
        proc.kill()
        proc.wait(30)
        sub.close()
    # retained: a subscriber that comes later sees offline at once
    late = Subscriber(mosquitto.host, mosquitto.port, f"{PREFIX}/available")
    try:
        assert late.wait_for(lambda m: len(m) > 0)
        assert late.messages[0][1:] == (b"offline", True)
    finally:
        late.close()


@pytest.fixture
def tls_broker(mosquitto_factory: type[Mosquitto]) -> Mosquitto:
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed (needed to make the test certificates)")
    return mosquitto_factory(users={"streamlabel": "s3cret"}, tls=True).start()


def test_tls_with_password_delivers(tmp_path: Path, tls_broker: Mosquitto) -> None:
    store = new_store(tmp_path)
    store.write(frame_result(["accepted"]), "c")
    tls = {"enabled": True, "ca_file": str(tls_broker.ca_file)}
    pub = MqttPublisher(mqtt_cfg(tls_broker, username="streamlabel", password="s3cret", tls=tls), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: store.manifest.outbox_depth() == 0)  # PUBACKed over TLS
        assert pub.connected
    finally:
        pub.stop(5.0)


def test_tls_with_an_unknown_ca_is_refused_not_connected(tmp_path: Path, tls_broker: Mosquitto) -> None:
    store = new_store(tmp_path)
    tls = {"enabled": True}  # system CAs: they do not know the test CA
    cfg = mqtt_cfg(tls_broker, username="streamlabel", password="s3cret", tls=tls, reconnect_max_s=0.2)
    pub = MqttPublisher(cfg, store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: pub.last_error is not None)
        assert "certificate verify failed" in pub.last_error and not pub.connected
    finally:
        pub.stop(2.0)


# Floor for a loaded 2-core machine (measured ~4800 events/s there with 826-byte payloads); catches a publisher
# that waits for each PUBACK in turn or commits per row.
MIN_EVENTS_PER_S = 500.0


def test_publisher_throughput(tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    from streamlabel.events.docgen import EXAMPLES
    from streamlabel.events.outbox import enqueue_event

    store = new_store(tmp_path)
    n = 3000
    with store.manifest.transaction() as db:
        for _ in range(n):
            enqueue_event(db, EXAMPLES["label"].model_copy(update={"id": new_event_id()}))
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{PREFIX}/#")
    pub = MqttPublisher(mqtt_cfg(mosquitto), store.manifest)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected)
        start = time.perf_counter()
        assert wait_until(lambda: store.manifest.outbox_depth() == 0)
        rate = n / (time.perf_counter() - start)
        assert sub.wait_for(lambda m: sum(t.endswith("/label") for t, _, _ in m) >= n, timeout_s=60)
    finally:
        pub.stop(5.0)
        sub.close()
    with capsys.disabled():
        print(f"\n[figures] {rate:.0f} events/s published and acknowledged ({n} label events)")
    assert rate >= MIN_EVENTS_PER_S
