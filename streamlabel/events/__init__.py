"""Event payloads, the transactional outbox and its sinks (MQTT publisher, or events.jsonl without a broker).

``open_sink(cfg, manifest)`` gives the sink the daemon starts; the store enqueues events in the transaction that
writes their label (``streamlabel.events.outbox.enqueue``), and the sink delivers them in order, at least once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamlabel.events.sink import EventSink

if TYPE_CHECKING:
    from streamlabel.config import Config
    from streamlabel.store.manifest import Manifest

__all__ = ["EventSink", "open_sink"]


def open_sink(cfg: Config, manifest: Manifest) -> EventSink:
    """An MQTT publisher when ``cfg.mqtt`` is set, else a writer of ``<store>/events.jsonl``; not started yet."""
    if cfg.mqtt is not None:
        from streamlabel.events.mqtt import MqttPublisher

        return MqttPublisher(cfg.mqtt, manifest)
    from streamlabel.events.jsonl import JsonlSink

    return JsonlSink(manifest, manifest.path.parent / "events.jsonl")
