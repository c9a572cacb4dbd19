"""Writes synthetic frames through DatasetStore with a live sink until killed (for the SIGKILL test).

``python -m tests.events.crash_writer STORE [MQTT_PORT]``: prints ``WROTE n`` after the n-th frame it committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamlabel.config import MqttConfig
from streamlabel.events.jsonl import JsonlSink
from streamlabel.events.mqtt import MqttPublisher
from streamlabel.store import DatasetStore
from tests.events.synth import frame_result


def main() -> None:
    root = Path(sys.argv[1])
    store = DatasetStore(root, ["eye"])
    store.manifest.record_run("c", {"test": True}, {"detect": "none"})
    if len(sys.argv) > 2:
        sink = MqttPublisher(
            MqttConfig(host="127.0.0.1", port=int(sys.argv[2]), prefix="crash", client_id="crash-writer"),
            store.manifest,
        )
    else:
        sink = JsonlSink(store.manifest, root / "events.jsonl")
    sink.start()
    seq = store.manifest.query("SELECT COUNT(*) FROM frames")[0][0]  # go on where a killed run stopped
    start = seq
    while True:
        store.write(frame_result(["accepted"] if seq % 5 else ["review"], seq=seq, size=(320, 240)), "c")
        sink.wake()
        seq += 1
        print(f"WROTE {seq - start}", flush=True)


if __name__ == "__main__":
    main()
