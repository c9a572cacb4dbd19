"""``Config``: the whole file, one section per concern."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import Field, field_validator

from streamlabel.config.base import _Model
from streamlabel.config.cluster import ClusterConfig
from streamlabel.config.models import ModelsConfig
from streamlabel.config.mqtt import MqttConfig
from streamlabel.config.privacy import PrivacyConfig
from streamlabel.config.review import ReviewConfig
from streamlabel.config.service import DaemonConfig, StoreConfig
from streamlabel.config.streams import StreamConfig
from streamlabel.config.target import TargetConfig
from streamlabel.config.tracking import TrackingConfig
from streamlabel.config.train import TrainConfig
from streamlabel.redaction import redact

STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Config(_Model):
    """The whole streamlabel configuration file."""

    streams: dict[str, StreamConfig] = Field(
        default_factory=dict, description="Cameras and files by name (letters, digits, '_' and '-')."
    )
    target: TargetConfig = Field(default_factory=TargetConfig, description="What to label.")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="Models per stage.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Tracking across frames.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The dataset store.")
    privacy: PrivacyConfig = Field(
        default_factory=PrivacyConfig, description="People in images written outside the dataset."
    )
    mqtt: MqttConfig | None = Field(None, description="MQTT broker for events; unset writes <store>/events.jsonl.")
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="The service.")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="The review page in the browser.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training a student (docs/training.md).")
    cluster: ClusterConfig | None = Field(
        None, description="Run on a Ray cluster (docs/cluster.md); unset: one process."
    )

    @field_validator("streams")
    @classmethod
    def _stream_names(cls, streams: dict[str, StreamConfig]) -> dict[str, StreamConfig]:
        for name in streams:
            if not STREAM_NAME.match(name):
                raise ValueError(
                    f"stream name {name!r} must be 1-64 letters, digits, '_' or '-' (it is used in paths and "
                    "MQTT topics)"
                )
        return streams

    def digest(self) -> str:
        """Short hash of the effective configuration, recorded with every label for provenance."""
        text = json.dumps(self.public_dump(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def public_dump(self) -> dict[str, Any]:
        """The config as JSON-ready data without secrets: what the manifest records (passwords in URLs and
        ``mqtt.password`` become ``***``; ``SecretStr`` fields dump as ``**********``)."""
        data = self.model_dump(mode="json", by_alias=True)
        for stream in data.get("streams", {}).values():
            stream["url"] = redact(stream["url"])
        if data.get("mqtt") and data["mqtt"].get("password") is not None:
            data["mqtt"]["password"] = "***"
        return json.loads(redact(json.dumps(data)))  # any other URL with a password, wherever it sits
