"""What the manifest records of a config holds no secret: URL passwords, the MQTT password, API keys."""

from __future__ import annotations

import json

from streamlabel.config import AnchorConfig, Config

SECRETS = ("cam-secret", "mqtt-secret", "api-secret", "proxy-secret")


def config() -> Config:
    return Config.model_validate(
        {
            "streams": {"door": {"url": "rtsp://admin:cam-secret@192.0.2.10:554/stream1"}},
            "mqtt": {"host": "broker.lan", "username": "sl", "password": "mqtt-secret"},
            "models": {
                "validate": {
                    "kind": "openai",
                    "base_url": "http://user:proxy-secret@127.0.0.1:8000/v1",
                    "api_key": "api-secret",
                }
            },
        }
    )


def test_public_dump_has_no_secret() -> None:
    cfg = config()
    text = json.dumps(cfg.public_dump())
    for secret in SECRETS:
        assert secret not in text
    dump = cfg.public_dump()
    assert dump["streams"]["door"]["url"] == "rtsp://admin:***@192.0.2.10:554/stream1"
    assert dump["mqtt"]["password"] == "***" and dump["mqtt"]["username"] == "sl"


def test_digest_ignores_secrets_but_not_settings() -> None:
    cfg = config()
    other_password = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"password": "changed"})})
    assert other_password.digest() == cfg.digest()
    cat = cfg.model_copy(update={"target": cfg.target.model_copy(update={"anchor": AnchorConfig(classes=["cat"])})})
    assert cat.digest() != cfg.digest()
