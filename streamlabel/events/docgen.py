"""Renders docs/events.md from the event models, so the reference always matches the payloads.

``python -m streamlabel.events.docgen > docs/events.md``; a test fails when the file is out of date.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from streamlabel.events.models import (
    MODELS,
    TOPICS,
    AvailableEvent,
    ClipEvent,
    LabelEvent,
    ModelTrainedEvent,
    PartInfo,
    RejectedEvent,
    ReviewedEvent,
    ReviewEvent,
    StatsEvent,
    StatusEvent,
    VerdictInfo,
    payload_of,
)

HEADER = """# Events reference

streamlabel publishes what it stores as MQTT events (paho-mqtt v2). Topics start with `mqtt.prefix`
(`streamlabel` by default). Payloads are JSON objects with `"v": 1` and a `kind`; they are defined as pydantic
models in `streamlabel/events/models.py`.

- **Delivery is at least once, in order.** Each label, review, rejected and clip event is inserted into the
  `outbox` table of `manifest.sqlite` in the same SQLite transaction as the rows it announces (a crash never
  leaves a label without its event, or an event without its label). The publisher drains the outbox in `seq`
  order and marks rows delivered as a prefix: a row only once the broker accepted it in its PUBACK (QoS 0 rows:
  once sent) *and* every older row is marked. After a broker restart, a crash, or a message the broker refused
  (MQTT 5 PUBACK reason code 0x80 or above, e.g. an ACL; logged as an error) it sends again from the oldest
  undelivered row, in order. So a subscriber may see an event twice, never misses one, and **the last copy of
  every event comes after a copy of every older event** (of its stream and of all streams). A refused event is
  retried with the reconnect backoff until the broker takes it; the events after it wait (`outbox_depth` in
  stats and metrics grows). With `mqtt.protocol: "3.1.1"` a broker cannot refuse a message in its PUBACK: a
  message it drops (an ACL) is acknowledged and lost, so keep the default MQTT 5.
- **Every event has a unique `id`** (32 hex digits; the first 12 are the Unix time in milliseconds, so ids sort by
  creation time). Drop repeats by `id`.
- **`<prefix>/available` carries a plain string**, `online` or `offline`, not JSON: the Home Assistant
  availability habit. The broker publishes `offline` as the daemon's last will when its connection dies.
- **Stream status is retained** and published again after every reconnect; stats are QoS 0 and not stored.
- Subscribers that must not miss events while they are offline use a persistent session (`clean_session`
  off, QoS 1 subscription) on a broker with persistence.
- **Without an `mqtt` section** the same outbox is drained into `<store>/events.jsonl`, one payload per line
  (status and stats lines too). Lines are appended and fsynced before the rows are marked delivered: a crash
  between the two writes the same lines again (same `id`), never loses one.

This file is generated from the code: `python -m streamlabel.events.docgen > docs/events.md`.
"""

_T = "2026-11-22T10:00:00.000+00:00"
_VERDICT = VerdictInfo(
    passed=True,
    confidence=0.93,
    confidence_source="logprobs",
    checks={"anchor_visible": True, "part_visible": True, "part_open": True, "no_human": True, "mask_on_part": True},
    reason="the dog's left eye is open and the mask covers it",
    model="gemma3:4b",
    reused=False,
)
_PART = PartInfo(
    class_name="eye",
    status="accepted",
    track_id=3,
    polygon=[[0.412, 0.305], [0.431, 0.301], [0.438, 0.322], [0.415, 0.327]],
    box=[0.412, 0.301, 0.438, 0.327],
    anchor_class="dog",
    verdict=_VERDICT,
)
_FID = "kitchen_20261122T100000000Z_000042"
_FRAME = {
    "stream": "kitchen",
    "time": _T,
    "frame_id": _FID,
    "seq": 42,
    "pts": 21.0,
    "width": 1280,
    "height": 720,
}
_REJECTED = _PART.model_copy(
    update={
        "status": "rejected",
        "verdict": _VERDICT.model_copy(
            update={"passed": False, "checks": {**_VERDICT.checks, "part_open": False}, "reason": "the eye is shut"}
        ),
    }
)
_ID = "019aab6c2e00" + "8f3c1d2e4b5a69788796"

EXAMPLES: dict[str, BaseModel] = {
    "available": AvailableEvent(id=_ID, time=_T, state="online"),
    "status": StatusEvent(id=_ID, time=_T, stream="kitchen", status="reconnecting", detail="rtsp: connection refused"),
    "label": LabelEvent(
        id=_ID,
        **_FRAME,
        image=f"images/train/kitchen/2026-11-22/{_FID}.jpg",
        label=f"labels/train/kitchen/2026-11-22/{_FID}.txt",
        parts=[_PART],
    ),
    "review": ReviewEvent(
        id=_ID,
        **_FRAME,
        image=f"review/images/kitchen/2026-11-22/{_FID}.jpg",
        label=f"review/labels/kitchen/2026-11-22/{_FID}.txt",
        parts=[_PART.model_copy(update={"status": "review"})],
    ),
    "rejected": RejectedEvent(
        id=_ID,
        stream="kitchen",
        time=_T,
        frame_id=_FID,
        reasons=["failed: part_open; the eye is shut"],
        parts=[_REJECTED],
    ),
    "clip": ClipEvent(
        id=_ID,
        stream="kitchen",
        time=_T,
        clip_id="kitchen_20261122T095958000Z_t3",
        path="clips/kitchen/kitchen_20261122T095958000Z_t3.mp4",
        sidecar="clips/kitchen/kitchen_20261122T095958000Z_t3.json",
        track_id=3,
        class_name="dog",
        start="2026-11-22T09:59:58.000+00:00",
        end="2026-11-22T10:00:14.500+00:00",
        frames=29,
        labels=17,
    ),
    "reviewed": ReviewedEvent(
        id=_ID,
        stream="kitchen",
        time=_T,
        review_id=17,
        frame_id=_FID,
        label_id=4242,
        decision="accept",
        status="accepted",
        previous_status="review",
        who="ana",
        track_id=3,
        image=f"images/train/kitchen/2026-11-22/{_FID}.jpg",
        label=f"labels/train/kitchen/2026-11-22/{_FID}.txt",
    ),
    "model_trained": ModelTrainedEvent(
        id=_ID,
        time=_T,
        run_id="20261122T100000Z-3f2a",
        base_model="yolo11n-seg.pt",
        weights="models/20261122T100000Z-3f2a/weights/best.pt",
        snapshot_hash="9c1e0b7d54a3f2e8",
        frames={"train": 1840, "val": 212},
        epochs=50,
        metrics={"box_map50": 0.81, "box_map50_95": 0.52, "mask_map50": 0.78, "mask_map50_95": 0.44},
        evaluation={"set": "gold", "frames": 120, "student": {"mask_map50_95": 0.41}},
        promoted=True,
    ),
    "stats": StatsEvent(
        id=_ID,
        time=_T,
        streams={"kitchen": {"status": "online", "frames": 5120, "dropped": 3, "labels": 812}},
        stages={"detect": {"ms_per_item": 9.4}, "validate": {"ms_per_item": 410.0}},
        outbox_depth=0,
    ),
}


def _type_name(ann: Any) -> str:
    text = str(ann).replace("typing.", "")
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    text = re.sub(r"streamlabel\.events\.models\.", "", text)
    return text.replace("|", "\\|")


def _fields(model: type[BaseModel]) -> list[str]:
    rows = ["| field | type | what it holds |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        rows.append(f"| `{name}` | {_type_name(info.annotation)} | {info.description or ''} |")
    return rows


def _topic(suffix: str) -> str:
    return "<prefix>/" + suffix.replace("{stream}", "<stream>")


def render_markdown() -> str:
    """The whole reference as Markdown."""
    out = [HEADER, "# Topics", "", "| topic | when | QoS / retain | payload |", "|---|---|---|---|"]
    for kind, t in TOPICS.items():
        retain = "retained" if t.retain else "not retained"
        out.append(f"| `{_topic(t.suffix)}` | {t.when} | {t.qos} / {retain} | [{kind}](#{kind}) |")
    out.append("")
    for kind, model in MODELS.items():
        t = TOPICS[kind]
        example = EXAMPLES[kind]
        out += [f"## {kind}", "", f"`{_topic(t.suffix)}`, QoS {t.qos}, {'retained' if t.retain else 'not retained'}."]
        out += ["", (model.__doc__ or "").strip(), "", *_fields(model), "", "Example payload:", ""]
        text = payload_of(example)  # type: ignore[arg-type]
        if kind == "available":
            out += ["```", text, "```", "", "In `events.jsonl` (and as a model) it reads:", ""]
            text = example.model_dump_json()
        out += ["```json", json.dumps(json.loads(text), indent=2), "```", ""]
    for model in (PartInfo, VerdictInfo):
        out += [f"## {model.__name__}", "", (model.__doc__ or "").strip(), "", *_fields(model), ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
