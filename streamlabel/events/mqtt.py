"""MQTT publisher (paho-mqtt v2): drains the outbox in order, at least once, across broker restarts.

One thread owns one paho client per connection and runs its network loop itself, so callbacks and the outbox
cursor never race. Rows are published in outbox order and marked delivered as a prefix: a row is marked once its
own PUBACK came and every row published before it in the session is marked (QoS 0 rows count once written to the
socket). A PUBACK with a failure reason code (MQTT v5: the broker refused the message, e.g. an ACL) marks nothing:
the session ends and, after the reconnect backoff, a fresh client starts again from the oldest undelivered row, in
order, as after a lost connection. So a subscriber may see duplicates (same ``id``), never a gap, and the last
copy of every event comes after a copy of every older event. ``<prefix>/available`` is ``online`` (retained)
after each CONNACK, ``offline`` on a clean stop, and ``offline`` as the last will when the socket dies.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from streamlabel.events.models import TOPICS, StatsEvent, StatusEvent
from streamlabel.events.sink import BATCH_ROWS, IDLE_POLL_S, SinkThread

if TYPE_CHECKING:
    from streamlabel.config.mqtt import MqttConfig
    from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

# Unacknowledged QoS 1 messages on the wire at once; more gives throughput on a far broker, uses more memory.
MAX_INFLIGHT = 64
# Seconds to wait for the broker's CONNACK after the TCP (and TLS) connection is up.
CONNACK_TIMEOUT_S = 10.0
# First wait after a failed connection attempt (doubles up to mqtt.reconnect_max_s).
FIRST_BACKOFF_S = 1.0
# A connection that lasted this long was healthy: after losing it, reconnect at once and reset the backoff. A
# shorter one (a broker that drops us right after CONNACK, e.g. a second daemon with the same client_id) backs off.
STABLE_SESSION_S = 10.0
# Longest wait for the PUBACK of the final `offline` on stop, when the stop timeout leaves less.
OFFLINE_ACK_S = 2.0
AUTH_REASONS = ("not authorized", "bad user name or password", "bad username or password")


class MqttPublisher(SinkThread):
    """Publishes the outbox, stream status and stats to the broker of ``cfg``."""

    name = "mqtt-publisher"

    def __init__(self, cfg: MqttConfig, manifest: Manifest) -> None:
        super().__init__(manifest)
        self.cfg = cfg
        self.last_error: str | None = None  # why the last connection attempt failed (None after a success)
        self.connects = 0  # successful connections so far
        self._connected = False
        self._dirty: set[str] = set()  # streams whose status must be (re)published
        self._pending_stats: deque[StatsEvent] = deque(maxlen=1)
        self._inflight: dict[int, int | None] = {}  # mid -> outbox seq (None: not an outbox row)
        self._early: dict[int, Any] = {}  # mid -> reason code, for acknowledgements before publish() returned
        self._published: deque[int] = deque()  # outbox seqs published this session, not yet marked delivered
        self._acked: set[int] = set()  # of those, the ones the broker accepted
        self._refused: str | None = None  # why the broker refused a message of this session
        self._topics: dict[int, str] = {}  # outbox seq -> topic suffix, while in flight (for the refusal message)
        self._connack: Any = None
        self._lost = False

    @property
    def connected(self) -> bool:
        """True only between an accepted CONNACK and the loss of that connection."""
        return self._connected

    def topic(self, suffix: str) -> str:
        return f"{self.cfg.prefix}/{suffix}"

    # -- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = min(FIRST_BACKOFF_S, self.cfg.reconnect_max_s)
        while not self._stopping.is_set():
            began = time.monotonic()
            if self._session() and time.monotonic() - began >= STABLE_SESSION_S:
                delay = min(FIRST_BACKOFF_S, self.cfg.reconnect_max_s)
                continue  # lost a healthy connection: try again at once
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _new_client(self) -> paho.Client:
        c = self.cfg
        if c.protocol == "5":  # a new client per session: clean_start on its first (only) connect
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=c.client_id, protocol=paho.MQTTv5)
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=c.client_id, clean_session=True)
        client.will_set(self.topic(TOPICS["available"].suffix), "offline", qos=1, retain=True)
        if c.username is not None:
            client.username_pw_set(c.username, c.password)
        if c.tls.enabled:
            client.tls_set(ca_certs=c.tls.ca_file, certfile=c.tls.cert_file, keyfile=c.tls.key_file)
            client.tls_insecure_set(c.tls.insecure)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _session(self) -> bool:
        """One connection: connect, publish until it is lost or a stop ends it; True when it was accepted."""
        self._connack, self._lost, self._refused = None, False, None
        self._inflight.clear()
        self._early.clear()
        self._published.clear()
        self._acked.clear()
        self._topics.clear()
        client = self._new_client()
        where = f"{self.cfg.host}:{self.cfg.port}"
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
            deadline = time.monotonic() + CONNACK_TIMEOUT_S
            while self._connack is None and not self._lost and time.monotonic() < deadline:
                if client.loop(0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError is an OSError)
            self._failed(f"cannot connect to MQTT broker {where}: {exc}")
            _close(client)
            return False
        if self._connack is None or self._connack.is_failure:
            reason = "no CONNACK" if self._connack is None else str(self._connack)
            hint = "; check mqtt.username and mqtt.password" if reason.lower() in AUTH_REASONS else ""
            self._failed(f"MQTT broker {where} refused the connection: {reason}{hint}")
            _close(client)
            return False
        self.connects += 1
        self._connected = True
        self.last_error = None
        log.info("connected to MQTT broker %s; %d event(s) wait in the outbox", where, self.depth())
        try:
            info = client.publish(self.topic(TOPICS["available"].suffix), "online", qos=1, retain=True)
            self._track(info.mid, None)
            with self._lock:
                self._dirty = set(self._statuses)
            self._pump(client)
        finally:
            self._connected = False
            self._flush_acks()
            _close(client)
        if self._refused is not None:
            self._failed(f"MQTT broker {where} refused {self._refused}; it stays in the outbox and is sent again")
            return False  # back off: the broker would refuse it again at once
        if not self._stopping.is_set():
            log.warning("lost the connection to MQTT broker %s; %d event(s) wait in the outbox", where, self.depth())
        return True

    def _failed(self, message: str) -> None:
        """Log a failed attempt once per distinct reason (ERROR), repeats at DEBUG; never raise."""
        level = logging.DEBUG if message == self.last_error else logging.ERROR
        log.log(level, "%s (retrying, at most every %.0f s)", message, self.cfg.reconnect_max_s)
        self.last_error = message

    def _pump(self, client: paho.Client) -> None:
        """Publish outbox rows in seq order while connected; on stop, drain until the deadline then say offline."""
        cursor = 0
        while True:
            sent = self._publish_control(client)
            if len(self._inflight) < MAX_INFLIGHT:
                rows = self.manifest.outbox_pending(cursor, min(BATCH_ROWS, MAX_INFLIGHT - len(self._inflight)))
                for row in rows:
                    info = client.publish(self.topic(row["topic"]), row["payload"], row["qos"], bool(row["retain"]))
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        self._lost = True
                        break
                    self._track(info.mid, row["seq"], row["topic"])
                    cursor = row["seq"]
                    sent += 1
            if self._lost:
                return
            if self._stopping.is_set() and self._finish(client, cursor):
                return
            busy = sent > 0 and len(self._inflight) < MAX_INFLIGHT
            if client.loop(0.0 if busy else IDLE_POLL_S) != MQTTErrorCode.MQTT_ERR_SUCCESS or self._lost:
                return
            self._flush_acks()

    def _finish(self, client: paho.Client, cursor: int) -> bool:
        """On stop: once drained (or out of time) publish offline, wait for its PUBACK and disconnect."""
        remaining = self._deadline - time.monotonic()
        drained = not self._inflight and not self.manifest.outbox_pending(cursor, 1)
        if not drained and remaining > OFFLINE_ACK_S:
            return False
        info = client.publish(self.topic(TOPICS["available"].suffix), "offline", qos=1, retain=True)
        self._track(info.mid, None)
        until = time.monotonic() + max(min(remaining, OFFLINE_ACK_S), 0.5)
        while not info.is_published() and time.monotonic() < until and not self._lost:
            if client.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        self._flush_acks()
        client.disconnect()
        client.loop(0.05)
        log.info("MQTT publisher stopped; %d event(s) left in the outbox", self.depth())
        return True

    def _publish_control(self, client: paho.Client) -> int:
        """Publish dirty stream states (retained) and the latest stats; not outbox rows, no ack tracking."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            statuses = [self._statuses[s] for s in sorted(dirty)]
        stats = [self._pending_stats.popleft()] if self._pending_stats else []
        for event in [*statuses, *stats]:
            t = TOPICS[event.kind]
            suffix = t.suffix.format(stream=event.stream)
            self._track(client.publish(self.topic(suffix), event.model_dump_json(), t.qos, t.retain).mid, None)
        return len(statuses) + len(stats)

    def _track(self, mid: int, seq: int | None, topic: str = "") -> None:
        """Remember what ``mid`` carries (in publish order), or settle it when its acknowledgement came first."""
        if seq is not None:
            self._published.append(seq)
            self._topics[seq] = topic
        if mid in self._early:
            self._settle(seq, self._early.pop(mid))
        else:
            self._inflight[mid] = seq

    def _settle(self, seq: int | None, reason_code: Any) -> None:
        """The broker answered for ``seq``: accepted, or refused (a v5 reason code of 0x80 or above)."""
        if seq is None:
            return
        topic = self._topics.pop(seq, "")
        if getattr(reason_code, "is_failure", False):
            if self._refused is None:
                self._refused = f"event {seq} on {self.topic(topic)} ({reason_code})"
            self._lost = True  # end the session: everything from this row on is sent again, in order
        else:
            self._acked.add(seq)

    def _flush_acks(self) -> None:
        """Mark delivered the longest run of accepted rows at the head of what this session published."""
        done = []
        while self._published and self._published[0] in self._acked:
            seq = self._published.popleft()
            self._acked.discard(seq)
            done.append(seq)
        if done:
            self.manifest.mark_delivered(done)
            self.delivered += len(done)

    # -- paho callbacks (run in this thread, inside client.loop / publish) -------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connack = reason_code

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, props: Any) -> None:
        log.debug("MQTT connection lost: %s", reason_code)
        self._lost = True
        self._connected = False

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        if mid not in self._inflight:
            self._early[mid] = reason_code
        else:
            self._settle(self._inflight.pop(mid), reason_code)

    # -- SinkThread hooks --------------------------------------------------------------------------------------

    def _status_changed(self, event: StatusEvent) -> None:
        with self._lock:
            self._dirty.add(str(event.stream))

    def _stats(self, event: StatsEvent) -> None:
        self._pending_stats.append(event)


def _close(client: paho.Client) -> None:
    """Drop a client's socket without a DISCONNECT (the broker keeps no session: clean_session)."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
