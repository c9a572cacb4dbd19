"""The transactional outbox: events are rows of ``manifest.sqlite`` written in the same transaction as their label.

A sink (MQTT publisher or events.jsonl writer) drains the rows in ``seq`` order and sets ``delivered`` once the
broker acknowledged a row (PUBACK; QoS 0 rows when sent) or the line is on disk. ``topic`` holds the topic without
the prefix (``<stream>/label``): the prefix is configuration of the sink, not of the stored event.
"""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from streamlabel.events.models import payload_of, topic_of, utc_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT UNIQUE NOT NULL,     -- the event id (also in the payload)
    stream    TEXT,
    kind      TEXT NOT NULL,            -- label | review | rejected | clip | ...
    topic     TEXT NOT NULL,            -- without the prefix: <stream>/label
    payload   TEXT NOT NULL,            -- the JSON payload as published
    qos       INTEGER NOT NULL,
    retain    INTEGER NOT NULL,
    frame_id  TEXT,
    clip_id   TEXT,
    created   TEXT NOT NULL,
    delivered TEXT                      -- NULL until PUBACK (QoS 0: sent) or written to events.jsonl
);
CREATE INDEX IF NOT EXISTS outbox_undelivered ON outbox(seq) WHERE delivered IS NULL;
CREATE INDEX IF NOT EXISTS outbox_frame ON outbox(frame_id);
CREATE INDEX IF NOT EXISTS outbox_clip ON outbox(clip_id);
"""


def enqueue(
    db: sqlite3.Connection,
    event: BaseModel,
    topic_suffix: str,
    qos: int,
    retain: bool,
    frame_id: str | None = None,
    clip_id: str | None = None,
) -> str:
    """Insert ``event`` into the outbox inside the caller's open transaction; returns the event id."""
    event_id = event.id  # type: ignore[attr-defined]
    db.execute(
        "INSERT INTO outbox (id, stream, kind, topic, payload, qos, retain, frame_id, clip_id, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event_id,
            getattr(event, "stream", None),
            getattr(event, "kind", type(event).__name__),
            topic_suffix,
            payload_of(event),  # type: ignore[arg-type]
            int(qos),
            int(retain),
            frame_id,
            clip_id,
            utc_iso(),
        ),
    )
    return event_id


def enqueue_event(
    db: sqlite3.Connection, event: BaseModel, frame_id: str | None = None, clip_id: str | None = None
) -> str:
    """Insert ``event`` with the topic, QoS and retain flag of its kind (models.TOPICS); returns its id."""
    suffix, qos, retain = topic_of(event)  # type: ignore[arg-type]
    return enqueue(db, event, suffix, qos, retain, frame_id=frame_id, clip_id=clip_id)
