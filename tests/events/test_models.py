"""Event payloads: version, unique sortable ids, topics and QoS, and docs/events.md generated from the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from streamlabel.events.docgen import EXAMPLES, render_markdown
from streamlabel.events.models import (
    MODELS,
    TOPICS,
    AvailableEvent,
    StatusEvent,
    new_event_id,
    payload_of,
    topic_of,
)

ROOT = Path(__file__).resolve().parents[2]


def test_event_ids_are_unique_and_sort_by_time() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    prefixes = [i[:12] for i in ids]
    assert prefixes == sorted(prefixes)


@pytest.mark.parametrize(
    ("kind", "suffix", "qos", "retain"),
    [
        ("available", "available", 1, True),
        ("status", "kitchen/status", 1, True),
        ("label", "kitchen/label", 1, False),
        ("review", "kitchen/review", 1, False),
        ("rejected", "kitchen/rejected", 0, False),
        ("clip", "kitchen/clip", 1, False),
        ("stats", "stats", 0, False),
    ],
)
def test_topic_qos_and_retain_follow_the_architecture(kind: str, suffix: str, qos: int, retain: bool) -> None:
    assert topic_of(EXAMPLES[kind]) == (suffix, qos, retain)


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_payload_is_version_1_json_of_its_model(kind: str) -> None:
    event = EXAMPLES[kind]
    data = event.model_dump(mode="json")
    assert data["v"] == 1 and data["kind"] == kind
    assert MODELS[kind].model_validate_json(event.model_dump_json()) == event


def test_available_payload_is_the_plain_string() -> None:
    assert payload_of(AvailableEvent(state="offline")) == "offline"
    assert json.loads(payload_of(StatusEvent(stream="cam", status="online")))["status"] == "online"


def test_models_reject_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        StatusEvent(stream="cam", status="sleeping")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        StatusEvent(stream="cam", status="online", colour="red")  # type: ignore[call-arg]


def test_docs_events_md_matches_the_models() -> None:
    doc = (ROOT / "docs" / "events.md").read_text()
    assert doc == render_markdown(), "docs/events.md is stale: python -m streamlabel.events.docgen > docs/events.md"
    for kind, t in TOPICS.items():
        assert f"## {kind}" in doc and t.when in doc
