"""Event payloads (``"v": 1``) and the topic, QoS and retain flag of each kind (ARCHITECTURE.md, Events).

Every payload is JSON of one of these pydantic models. ``kind`` names the model, ``id`` is unique per event and
sorts by creation time (12 hex digits of Unix milliseconds, then 20 random hex digits), so a subscriber can drop
the duplicates that at-least-once delivery may bring. The one exception is ``<prefix>/available``: its payload is
the plain string ``online`` or ``offline`` (the Home Assistant availability habit, and the broker sends it as our
last will, so it cannot carry a fresh id or time).
"""

from __future__ import annotations

import secrets
import time as _time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_event_id() -> str:
    """A unique event id that sorts by creation time: 12 hex digits of Unix ms + 20 random hex digits."""
    return f"{int(_time.time() * 1000):012x}{secrets.token_hex(10)}"


def utc_iso(when: datetime | None = None) -> str:
    """UTC time as ISO 8601 with milliseconds (now when ``when`` is None)."""
    return (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


class _Event(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = Field(1, description="Payload version; a breaking change gets a new number.")
    id: str = Field(default_factory=new_event_id, description="Unique event id, sortable by creation time.")
    stream: str | None = Field(None, description="The stream (camera) the event is about; null for global events.")
    time: str = Field(
        default_factory=utc_iso, description="UTC ISO 8601: the frame's capture time for frame events, else now."
    )


class VerdictInfo(BaseModel):
    """The validator's judgement of one mask."""

    model_config = ConfigDict(extra="forbid")

    passed: bool = Field(description="Every check passed.")
    confidence: float = Field(description="0-1: how sure the model is of `passed`.")
    confidence_source: str = Field(description="'logprobs', 'stated' (the model's own number) or 'none'.")
    checks: dict[str, bool] = Field(default_factory=dict, description="Check name -> passed.")
    reason: str = Field("", description="The model's short explanation.")
    model: str = Field("", description="Model id that judged.")
    reused: bool = Field(False, description="Carried over from an earlier frame of the same track.")


class PartInfo(BaseModel):
    """One labeled part (a mask) of a frame."""

    model_config = ConfigDict(extra="forbid")

    class_name: str = Field(description="Dataset class of the part (target.part.class_name).")
    status: str = Field(description="accepted | review | rejected | pending.")
    track_id: int | None = Field(None, description="Track of the part across frames; null without tracking.")
    polygon: list[list[float]] = Field(description="Mask outline, [[x, y], ...] normalized to 0-1 by image size.")
    box: list[float] = Field(description="Part box [x1, y1, x2, y2], normalized to 0-1 by image size.")
    anchor_class: str = Field("", description="Class of the anchor the part lies in (e.g. dog).")
    verdict: VerdictInfo | None = Field(None, description="The validator's verdict; null when validation is off.")


class _FrameEvent(_Event):
    frame_id: str = Field(description="Stable frame id (also the file name of the image and label).")
    seq: int = Field(description="Index of the frame among the stream's sampled frames.")
    pts: float = Field(description="Seconds from the start of the stream.")
    width: int = Field(description="Image width in pixels.")
    height: int = Field(description="Image height in pixels.")
    image: str | None = Field(description="Image path relative to the store root.")
    label: str | None = Field(description="YOLO-seg label path relative to the store root.")
    parts: list[PartInfo] = Field(description="The parts written to the label file, in line order.")


class LabelEvent(_FrameEvent):
    """A validated labeled frame was stored in the dataset."""

    kind: Literal["label"] = Field("label", description="What the event is; names its payload model.")


class ReviewEvent(_FrameEvent):
    """A labeled frame went to the review queue: a person decides."""

    kind: Literal["review"] = Field("review", description="What the event is; names its payload model.")


class RejectedEvent(_Event):
    """Candidates of a frame were rejected by the validator (published only with mqtt.publish_rejected)."""

    kind: Literal["rejected"] = Field("rejected", description="What the event is; names its payload model.")
    frame_id: str = Field(description="Stable frame id.")
    reasons: list[str] = Field(description="Per rejected part: the failed checks and the model's reason.")
    parts: list[PartInfo] = Field(description="The rejected parts.")


class ClipEvent(_Event):
    """A clip of a finished track segment was written."""

    kind: Literal["clip"] = Field("clip", description="What the event is; names its payload model.")
    clip_id: str = Field(description="Unique clip id (also the file name).")
    path: str = Field(description="MP4 path relative to the store root.")
    sidecar: str | None = Field(None, description="JSON sidecar (per-frame labels and tracks) relative to the store.")
    track_id: int | None = Field(None, description="The track the clip follows.")
    part: int = Field(
        0,
        description="Piece of the track: 0 for the first clip, then 1, 2, ... for the clips a long track is cut into "
        "at tracking.clip_max_s (stream, track_id and part name one clip).",
    )
    class_name: str | None = Field(None, description="Class of the tracked object.")
    start: str = Field(description="UTC ISO 8601 start of the clip (pre-roll included).")
    end: str = Field(description="UTC ISO 8601 end of the clip (post-roll included).")
    frames: int = Field(description="Sampled frames of the segment.")
    labels: int = Field(description="Labels stored for those frames.")


class ReviewedEvent(_Event):
    """A person accepted, rejected or corrected a part on the review page, or undid such a decision."""

    kind: Literal["reviewed"] = Field("reviewed", description="What the event is; names its payload model.")
    review_id: int = Field(description="Row of the decision in the manifest's `reviews` table.")
    frame_id: str = Field(description="Stable frame id of the part's frame.")
    label_id: int = Field(description="Row of the part in the manifest's `labels` table.")
    decision: str = Field(
        description="accept | fix (accepted with a new mask) | reject | not_target | "
        "add (a part a person drew around a missed one) | undo."
    )
    status: str = Field(description="The part's status after the decision (accepted | rejected | review | pending).")
    previous_status: str = Field(description="The part's status before the decision (`missed` for an add).")
    who: str = Field(description="Who decided (the reviewer's name, or the account that served the page).")
    track_id: int | None = Field(None, description="Track of the part across frames; null without tracking.")
    image: str | None = Field(None, description="The frame's main image after the decision, relative to the store.")
    label: str | None = Field(None, description="Its YOLO-seg label file after the decision, relative to the store.")


class StatusEvent(_Event):
    """State of one stream (retained: a new subscriber sees the latest at once)."""

    kind: Literal["status"] = Field("status", description="What the event is; names its payload model.")
    status: Literal["online", "reconnecting", "offline", "finished"] = Field(description="The stream's state.")
    detail: str = Field("", description="Why, in words (e.g. the last error); never holds a password.")


class AvailableEvent(_Event):
    """The daemon's availability. On MQTT the payload is only the plain string `online` or `offline`."""

    kind: Literal["available"] = Field("available", description="What the event is; names its payload model.")
    state: Literal["online", "offline"] = Field(description="online on connect, offline on stop or as last will.")

    def mqtt_payload(self) -> str:
        """The plain string sent on ``<prefix>/available``."""
        return self.state


class StatsEvent(_Event):
    """Periodic figures; keys beyond the documented ones may be added by the daemon."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["stats"] = Field("stats", description="What the event is; names its payload model.")
    streams: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per stream figures.")
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per stage figures.")
    outbox_depth: int = Field(0, description="Events stored but not yet delivered.")


class ModelTrainedEvent(_Event):
    """A student model finished training (``promoted`` false), or became the daemon's student (``promoted`` true)."""

    kind: Literal["model_trained"] = Field("model_trained", description="What the event is; names its payload model.")
    run_id: str = Field(description="The training run: its folder under <store>/models/ and its `models` row.")
    base_model: str = Field(description="What training started from (.pt weights, or a .yaml: random init).")
    weights: str = Field(description="The student's weights (best.pt) relative to the store root.")
    snapshot_hash: str = Field(description="SHA-256 of the frozen dataset it trained on (snapshot.json).")
    frames: dict[str, int] = Field(description="Frames it trained and validated on: {'train': n, 'val': n}.")
    epochs: int = Field(description="Epochs trained.")
    metrics: dict[str, float | None] = Field(
        description="Its figures on the val split: box_map50, box_map50_95, mask_map50, mask_map50_95."
    )
    evaluation: dict[str, Any] | None = Field(
        None, description="Its evaluation on the gold set (`streamlabel evaluate --json`), when one was made."
    )
    promoted: bool = Field(False, description="It became the daemon's student (it beat the previous one).")


@dataclass(frozen=True)
class Topic:
    """Where one kind of event goes."""

    suffix: str  # after "<prefix>/"; "{stream}" is replaced by the stream name
    qos: int
    retain: bool
    when: str


TOPICS: dict[str, Topic] = {
    "available": Topic("available", 1, True, "`online` on connect, `offline` as last will and on clean stop"),
    "status": Topic("{stream}/status", 1, True, "`online`, `reconnecting`, `offline`, `finished`"),
    "label": Topic("{stream}/label", 1, False, "a validated labeled frame was stored"),
    "review": Topic("{stream}/review", 1, False, "a label went to the review queue"),
    "rejected": Topic("{stream}/rejected", 0, False, "a candidate was rejected, with reasons (if enabled)"),
    "clip": Topic("{stream}/clip", 1, False, "a clip of a finished track segment was written"),
    "reviewed": Topic("{stream}/reviewed", 1, False, "a person accepted, rejected or corrected an item"),
    "model_trained": Topic("model/trained", 1, False, "a student model finished training, with its evaluation"),
    "stats": Topic("stats", 0, False, "periodic per-stream and per-stage figures"),
}

MODELS: dict[str, type[_Event]] = {
    "available": AvailableEvent,
    "status": StatusEvent,
    "label": LabelEvent,
    "review": ReviewEvent,
    "rejected": RejectedEvent,
    "clip": ClipEvent,
    "reviewed": ReviewedEvent,
    "model_trained": ModelTrainedEvent,
    "stats": StatsEvent,
}


def topic_of(event: _Event) -> tuple[str, int, bool]:
    """Topic suffix (without the prefix), QoS and retain flag of ``event``."""
    t = TOPICS[event.kind]  # type: ignore[attr-defined]
    return t.suffix.format(stream=event.stream or ""), t.qos, t.retain


def payload_of(event: _Event) -> str:
    """The MQTT payload text of ``event``."""
    if isinstance(event, AvailableEvent):
        return event.mqtt_payload()
    return event.model_dump_json()
