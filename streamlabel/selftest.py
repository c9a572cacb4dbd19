"""``streamlabel selftest``: the whole pipeline on a synthetic clip with tiny random-weight models, offline."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from streamlabel.config import Config, MqttConfig

# How long the selftest waits for the broker's CONNACK before it gives up, and for the outbox to drain after.
MQTT_CONNECT_TIMEOUT_S = 15.0
MQTT_DRAIN_TIMEOUT_S = 30.0

NOTICE = (
    "selftest uses tiny models with RANDOM weights: it proves that decoding, every stage backend, the store and "
    "the manifest work on this machine. The labels it writes are meaningless."
)


def parse_broker(address: str) -> MqttConfig:
    """``HOST:PORT`` (or ``HOST``, port 1883) as the mqtt section the selftest publishes with."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, "1883"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--mqtt must be HOST:PORT (got {address!r})")
    return MqttConfig(host=host.strip("[]"), port=int(port), client_id=f"streamlabel-selftest-{os.getpid()}")


def run_selftest(out: Path | None, console: Console, mqtt: MqttConfig | None = None) -> bool:
    """Build tiny models, render a clip, label it through the real backends, check and report the store.

    With ``mqtt`` the events of the run are published to that broker (else written to <store>/events.jsonl).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)  # sam2 uses torch.jit.script, deprecated in torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console.print(f"[yellow]{NOTICE}[/]")
    with tempfile.TemporaryDirectory(prefix="streamlabel-selftest-") as tmp:
        root = out or Path(tmp)
        return _selftest(root, console, mqtt)


def _selftest(root: Path, console: Console, mqtt: MqttConfig | None = None) -> bool:
    from streamlabel.events import open_sink
    from streamlabel.pipeline import Stages
    from streamlabel.report import label_with_progress
    from streamlabel.stages.base import Runtime
    from streamlabel.store import DatasetStore, Manifest
    from streamlabel.store.check import check_store
    from streamlabel.tiny import build_all, tiny_config_dict
    from streamlabel.tiny.scene import SceneSpec, write_clip

    start = time.perf_counter()
    console.print(f"building tiny models in {root / 'models'} …")
    models = build_all(root / "models")
    clip = root / "clips" / "selftest_scene.mp4"
    write_clip(SceneSpec(seconds=2.0), clip)
    console.print(f"rendered {clip} ({time.perf_counter() - start:.1f} s so far)")
    cfg = Config.model_validate(tiny_config_dict(models, root / "store", {"selftest": str(clip)}))
    cfg = cfg.model_copy(update={"mqtt": mqtt})
    config_path = write_config(cfg, root / "streamlabel.yml")
    console.print(f"config of this run: {config_path} (label or run with it: see the README)", highlight=False)
    runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype, cfg.models.compile)
    stages = Stages.build(cfg, runtime)
    store = DatasetStore.from_config(cfg, publish_rejected=mqtt is not None)
    sink_manifest = Manifest(store.manifest.path)  # the run closes the store; the sink drains after it
    sink = open_sink(cfg, sink_manifest)
    sink.start()
    try:
        if mqtt is not None and not _wait(lambda: sink.connected, MQTT_CONNECT_TIMEOUT_S):
            error = getattr(sink, "last_error", None) or "no answer"
            console.print(f"[red]selftest FAILED: cannot publish to MQTT broker {mqtt.host}:{mqtt.port}: {error}[/]")
            return False
        stats = label_with_progress(cfg, stages, store, console, sink)  # the run publishes the stream's status
        _wait(lambda: sink.depth() == 0, MQTT_DRAIN_TIMEOUT_S if mqtt else 10.0)
    finally:
        sink.stop(10.0)
    total = sink_manifest.query("SELECT COUNT(*) FROM outbox")[0][0]
    left = sink.depth()
    sink_manifest.close()
    where = f"MQTT broker {mqtt.host}:{mqtt.port} (topics {mqtt.prefix}/#)" if mqtt else "store/events.jsonl"
    console.print(f"events: {total - left} of {total} delivered to {where}", highlight=False)
    problems = check_store(Path(cfg.store.path))
    for p in problems:
        console.print(f"[red]store problem: {p}[/]")
    ok = stats.frames > 0 and not problems and not any(stats.ended.values()) and left == 0
    accepted = stats.labels.get("accepted", 0)
    console.print(
        f"{accepted} labels accepted into {Path(cfg.store.path) / 'images'} and its labels/ (with their events): the "
        "whole path works; with random weights those verdicts are meaningless.",
        highlight=False,
    )
    verdict = "[green]selftest passed[/]" if ok else "[red]selftest FAILED[/]"
    console.print(
        f"{verdict}: {stats.frames} frames through detect → ground → segment → validate, "
        f"{stats.parts} masks judged, store consistent: {not problems}, events delivered: {left == 0}; "
        f"{time.perf_counter() - start:.1f} s in all. Output: {root}"
    )
    return ok


def write_config(cfg: Config, path: Path) -> Path:
    """Save ``cfg`` as a YAML file that ``streamlabel label/run -c`` loads back to the same config."""
    import yaml

    data = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    header = "# The config streamlabel selftest used: tiny random-weight models (meaningless labels).\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``cond`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
