"""Prometheus metrics of one daemon (its own registry), a cached store size, and the HTTP endpoint.

``/metrics`` is the Prometheus text format; ``/healthz`` answers 200 while the labeler loop ticks and 503 when it
has not for ``daemon.health_max_age_s``; ``/status`` is the JSON that ``streamlabel status`` prints.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from streamlabel.frames import FrameResult, LabelStatus
from streamlabel.store.dataset import StoredFrame
from streamlabel.streams import StreamStatus

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# How often the store folder is walked for its size (seconds); a walk of a large store costs disk reads.
STORE_SCAN_INTERVAL_S = 60.0


def rejection_reason(result: FrameResult, j: int) -> str:
    """Why part ``j`` was rejected: its first failed check, or 'unreadable' when the answer had none."""
    verdict = result.parts.data["verdict"][j]
    if verdict is None:
        return "no_verdict"
    failed = verdict.failed_checks()
    return failed[0] if failed else "unreadable"


class DaemonMetrics:
    """Counters and histograms the runner feeds, plus a collector reading live state at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.frames = Counter("streamlabel_frames_labeled", "Frames that went through every stage.", registry=r)
        self.stored = Counter("streamlabel_frames_stored", "Frames stored, by split.", ["split"], registry=r)
        self.clips = Counter("streamlabel_clips_written", "Clips of finished track segments written.", registry=r)
        self.clips_dropped = Counter(
            "streamlabel_clips_dropped", "Clips not cut: the clip queue was full or the stop came first.", registry=r
        )
        self.store_errors = Counter("streamlabel_store_errors", "Frames the store refused (logged).", registry=r)
        self.labels = Counter(
            "streamlabel_labels",
            "Labeled parts by outcome: accepted (passed), review, rejected, pending.",
            ["status"],
            registry=r,
        )
        self.rejected = Counter(
            "streamlabel_rejected", "Rejected parts by reason (the first failed check).", ["reason"], registry=r
        )
        self.stage_latency = Histogram(
            "streamlabel_stage_latency_seconds",
            "Seconds one batch spent in a stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.stage_batch = Histogram(
            "streamlabel_stage_batch_size", "Items per batch of a stage.", ["stage"], buckets=BATCH_BUCKETS, registry=r
        )
        for status in LabelStatus:
            self.labels.labels(status=str(status))
        self._state: Callable[[], dict[str, Any]] | None = None

    def bind(self, state: Callable[[], dict[str, Any]]) -> None:
        """Read live state (streams, outbox, store size, labeler tick) from ``state()`` at every scrape."""
        self._state = state
        self.registry.register(_StateCollector(self))

    def observe_batch(self, deltas: dict[str, tuple[float, int]]) -> None:
        """One labeler batch: seconds and items per stage."""
        for stage, (seconds, items) in deltas.items():
            self.stage_latency.labels(stage=stage).observe(seconds)
            self.stage_batch.labels(stage=stage).observe(items)

    def observe_result(self, result: FrameResult, stored: StoredFrame | None) -> None:
        """One labeled frame and what the store did with it."""
        self.frames.inc()
        if stored is not None:
            self.stored.labels(split=stored.split).inc()
        for j, status in enumerate(result.statuses()):
            self.labels.labels(status=status).inc()
            if status == LabelStatus.REJECTED:
                self.rejected.labels(reason=rejection_reason(result, j)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Per-stream counters and gauges, outbox depth, store bytes and loop age, read when scraped."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = self._metrics._state() if self._metrics._state is not None else {}
        streams: dict[str, dict[str, Any]] = state.get("streams", {})
        families = {
            "sampled": CounterMetricFamily("streamlabel_stream_sampled_frames", "Sampled frames.", labels=["stream"]),
            "dropped": CounterMetricFamily(
                "streamlabel_stream_dropped_frames", "Sampled frames dropped on a full queue.", labels=["stream"]
            ),
            "reconnects": CounterMetricFamily("streamlabel_stream_reconnects", "Reconnects.", labels=["stream"]),
            "restarts": CounterMetricFamily(
                "streamlabel_stream_restarts", "Reader restarts by the crash-loop guard.", labels=["stream"]
            ),
            "fps": GaugeMetricFamily("streamlabel_stream_fps", "Sampled frames per second, recent.", labels=["stream"]),
        }
        status = GaugeMetricFamily(
            "streamlabel_stream_status", "1 for the stream's current status.", labels=["stream", "status"]
        )
        for name, s in streams.items():
            for key, family in families.items():
                family.add_metric([name], s[key])
            for value in StreamStatus:
                status.add_metric([name, str(value)], 1.0 if s["status"] == value else 0.0)
        yield from families.values()
        yield status
        yield from _sift_families(state.get("sift", {}))
        private = CounterMetricFamily(
            "streamlabel_privacy_dropped",
            "Frames and clips not stored because a person was in them (privacy.people: drop).",
            labels=["stream", "kind"],
        )
        for kind, per_stream in state.get("privacy_dropped", {}).items():
            for name, count in per_stream.items():
                private.add_metric([name, kind], count)
        yield private
        for key, help_text in (
            ("outbox_depth", "Events not yet delivered."),
            ("store_bytes", "Bytes in the store folder (walked every minute)."),
            ("labeler_tick_age_seconds", "Seconds since the labeler loop last ticked."),
            ("sink_connected", "1 when the event sink is connected."),
            ("clips_queued", "Clips waiting for the clip thread."),
            ("clips_pending", "Clips a stop left to be cut at a later start (clips_pending rows)."),
        ):
            if state.get(key) is not None:
                yield GaugeMetricFamily(f"streamlabel_{key}", help_text, value=float(state[key]))


def _sift_families(sift: dict[str, dict[str, int]]) -> Iterator[Metric]:
    """The novelty gate's and the daily budget's counts per stream (``Labeler.sift_counts``)."""
    parts = CounterMetricFamily(
        "streamlabel_novelty_parts",
        "Tracked parts the novelty gate kept or dropped as near-copies.",
        labels=["stream", "decision"],
    )
    frames = CounterMetricFamily(
        "streamlabel_novelty_frames_dropped",
        "Frames not validated or stored: every part a near-copy.",
        labels=["stream"],
    )
    budget = CounterMetricFamily(
        "streamlabel_budget_frames",
        "Frames offered to the daily budget, kept or refused (refused: not stored).",
        labels=["stream", "decision"],
    )
    for name, c in sift.items():
        parts.add_metric([name, "kept"], c["gate_kept"])
        parts.add_metric([name, "dropped"], c["gate_dropped"])
        frames.add_metric([name], c["gate_frames_dropped"])
        budget.add_metric([name, "kept"], c["budget_kept"])
        budget.add_metric([name, "refused"], c["budget_refused"])
    yield from (parts, frames, budget)


class StoreSizer(threading.Thread):
    """Walks the store folder every ``interval_s`` and keeps the total size; ``bytes`` is the last result."""

    def __init__(self, root: Path, interval_s: float = STORE_SCAN_INTERVAL_S) -> None:
        super().__init__(name="store-size", daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.bytes: int | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.bytes = self.measure(self.root)
            if self._halt.wait(self.interval_s):
                return

    @staticmethod
    def measure(root: Path) -> int:
        total = 0
        for folder, _dirs, files in os.walk(root):
            for f in files:
                try:
                    total += os.stat(os.path.join(folder, f)).st_size
                except OSError:  # renamed or pruned while walking
                    continue
        return total

    def stop(self) -> None:
        self._halt.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9310`` for IPv6) → (host, port); ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    """A small threaded HTTP server: /metrics, /healthz and /status.

    Args:
        address: ``HOST:PORT``; port 0 picks a free one (``bound`` tells which).
        metrics: the registry to render.
        health: returns (healthy, details) for /healthz.
        status: returns the /status JSON.
    """

    def __init__(
        self,
        address: str,
        metrics: DaemonMetrics,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        host, port = parse_address(address)
        handler = _handler(metrics, health, status)
        self.httpd = (_Server6 if ":" in host else _Server)((host, port), handler)
        self.bound = f"{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on http://%s/metrics", self.bound)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(
    metrics: DaemonMetrics,
    health: Callable[[], tuple[bool, dict[str, Any]]],
    status: Callable[[], dict[str, Any]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            try:
                if path == "/metrics":
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok, details = health()
                    self._json(200 if ok else 503, {"ok": ok, **details})
                elif path == "/status":
                    self._json(200, status())
                else:
                    self._json(404, {"error": f"no such endpoint {path}; try /metrics, /healthz or /status"})
            except Exception as exc:  # a bug behind one endpoint must not kill the server thread
                log.exception("metrics endpoint %s failed", path)
                self._json(500, {"error": str(exc)})

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, (json.dumps(body, default=str) + "\n").encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: debug, not info
            log.debug("http %s %s", self.address_string(), format % args)

    return Handler
