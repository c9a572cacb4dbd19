"""``mqtt``: the broker that receives label events (optional: without it events go to ``<store>/events.jsonl``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from streamlabel.config.base import _Model


class TlsConfig(_Model):
    """TLS to the broker."""

    enabled: bool = Field(False, description="Connect with TLS (usually port 8883).")
    ca_file: str | None = Field(None, description="CA bundle of the broker certificate; system CAs when unset.")
    cert_file: str | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: str | None = Field(None, description="Key of the client certificate.")
    insecure: bool = Field(False, description="Skip the host name check (test brokers only).")


class MqttConfig(_Model):
    """The MQTT broker (paho-mqtt v2). Every stored label becomes an event, delivered at least once, in order."""

    host: str = Field(description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is the usual TLS port).")
    username: str | None = Field(None, description="User name, if the broker wants one.")
    password: str | None = Field(None, description="Password; write ${MQTT_PASSWORD} and keep it out of the file.")
    client_id: str = Field("streamlabel", description="MQTT client id; unique per daemon on one broker.")
    prefix: str = Field("streamlabel", description="Topic prefix: <prefix>/<stream>/label and so on.")
    keepalive_s: int = Field(30, ge=5, description="Keep-alive. Lower notices a dead broker sooner.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    publish_rejected: bool = Field(False, description="Also publish rejected candidates (QoS 0) with their reasons.")
    stats_interval_s: float = Field(60.0, gt=0, description="Seconds between <prefix>/stats messages.")
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT version. '5' lets the broker refuse a message (an ACL, a quota) in its PUBACK, so the "
        "event stays in the outbox and is sent again; with '3.1.1' a refused message is acknowledged like any "
        "other and lost. Use '3.1.1' only for brokers that predate MQTT 5 (Mosquitto < 1.6).",
    )
    reconnect_max_s: float = Field(
        60.0, gt=0, description="Longest wait between reconnect attempts (the wait doubles from 1 s up to this)."
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "#+"):
            raise ValueError(f"must be a topic prefix without leading/trailing '/' or wildcards (got {value!r})")
        return value
