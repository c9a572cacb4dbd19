"""Synthetic stored frames and a recording MQTT subscriber, for the events tests (no models needed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import supervision as sv
from paho.mqtt.enums import CallbackAPIVersion

from streamlabel.frames import Frame, FrameResult
from streamlabel.stages.base import Verdict

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def frame_result(
    statuses: list[str], seq: int = 0, stream: str = "cam", size: tuple[int, int] = (64, 48)
) -> FrameResult:
    """A frame of ``size`` (w, h) with one dog anchor and one square part per status, each with a verdict."""
    w, h = size
    image = np.full((h, w, 3), 40 + seq % 200, np.uint8)
    frame = Frame(stream, seq, seq * 0.5, T0 + timedelta(seconds=seq * 0.5), image)
    anchors = sv.Detections(
        xyxy=np.array([[2, 2, w - 2, h - 2]], np.float32),
        confidence=np.array([0.9]),
        class_id=np.array([16]),
        data={"class_name": np.array(["dog"])},
    )
    n = len(statuses)
    polygons = np.empty(n, dtype=object)
    polygons[:] = [np.array([[4, 4], [12, 4], [12, 12], [4, 12]], np.float32) + 8 * k for k in range(n)]
    verdicts = np.empty(n, dtype=object)
    verdicts[:] = [
        Verdict(s != "rejected", 0.9, {"eye_open": s != "rejected"}, "looks fine", "tiny", 0.01, "stated")
        for s in statuses
    ]
    parts = sv.Detections(
        xyxy=np.array([[4 + 8 * k, 4 + 8 * k, 12 + 8 * k, 12 + 8 * k] for k in range(n)], np.float32).reshape(-1, 4),
        confidence=np.full(n, 0.5),
        class_id=np.zeros(n, int),
        tracker_id=np.arange(1, n + 1),
        data={
            "anchor_index": np.zeros(n, int),
            "polygon": polygons,
            "status": np.array(statuses, dtype=object),
            "verdict": verdicts,
            "mask_score": np.full(n, 0.8),
        },
    )
    return FrameResult(frame, anchors, parts)


class Subscriber:
    """A paho subscriber that records every message; ``session`` keeps a persistent session (clean_session off)."""

    def __init__(self, host: str, port: int, topic: str = "#", session: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retain
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.topic = topic
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=session or "",
            clean_session=session is None,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(30), "subscriber did not get its SUBACK"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, done: Callable[[list[tuple[str, bytes, bool]]], bool], timeout_s: float = 30.0) -> bool:
        """Wait until ``done(messages)`` holds (True) or the deadline passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not done(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def events(self, suffix: str = "") -> list[dict[str, Any]]:
        """JSON payloads of the recorded messages whose topic ends with ``suffix``."""
        with self._cond:
            msgs = list(self.messages)
        return [json.loads(p) for t, p, _ in msgs if t.endswith(suffix) and p.startswith(b"{")]

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def first_seen(ids: list[str]) -> list[str]:
    """``ids`` without repeats, in order of first appearance (at-least-once may repeat, never reorder)."""
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return list(seen)
