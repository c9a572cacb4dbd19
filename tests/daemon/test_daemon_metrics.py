"""The metrics registry, /metrics, /healthz and /status over real HTTP, and ``streamlabel status``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.daemon.metrics import DaemonMetrics, MetricsServer, StoreSizer, parse_address
from streamlabel.daemon.status import StatusUnavailableError, fetch_status, status_url
from streamlabel.frames import Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.store.dataset import StoredFrame
from tests.fixtures.rtsp import free_port

STATE: dict[str, Any] = {
    "version": "0.1.0",
    "pid": 4242,
    "healthy": True,
    "tick_age_s": 0.2,
    "uptime_s": 12.0,
    "config": "/etc/streamlabel/streamlabel.yml",
    "store": "/var/lib/streamlabel",
    "store_bytes": 2048,
    "frames_labeled": 7,
    "frames_stored": 5,
    "labels": {"accepted": 3, "rejected": 2},
    "outbox_depth": 1,
    "sink_connected": True,
    "reloads": {"applied": 1, "rejected": 0},
    "needs_restart": ["models"],
    "stages": {"detect": {"seconds": 0.5, "items": 7}},
    "streams": {
        "kitchen": {
            "status": "online",
            "detail": "",
            "url": "rtsp://cam:***@10.0.0.2/s",
            "sampled": 9,
            "dropped": 1,
            "reconnects": 2,
            "restarts": 0,
            "fps": 2.0,
        },
        "garden": {
            "status": "offline",
            "detail": "no such file",
            "url": "/v/g.mp4",
            "sampled": 0,
            "dropped": 0,
            "reconnects": 0,
            "restarts": 5,
            "fps": 0.0,
        },
    },
}


def result_with(statuses: list[str], verdicts: list[Verdict | None]) -> FrameResult:
    n = len(statuses)
    frame = Frame("kitchen", 0, 0.0, datetime.now(UTC), np.zeros((8, 8, 3), np.uint8))
    anchors = sv.Detections(xyxy=np.array([[0, 0, 8, 8]], float))
    parts = sv.Detections(xyxy=np.tile([1.0, 1, 4, 4], (n, 1)) if n else np.empty((0, 4)))
    parts.data["status"] = np.array(statuses, dtype=object)
    judged = np.empty(n, dtype=object)
    judged[:] = verdicts
    parts.data["verdict"] = judged
    return FrameResult(frame, anchors, parts)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def server() -> Iterator[tuple[MetricsServer, DaemonMetrics, dict[str, Any]]]:
    metrics = DaemonMetrics()
    health = {"ok": True}
    metrics.bind(
        lambda: {
            "streams": STATE["streams"],
            "outbox_depth": 3,
            "store_bytes": 1234,
            "labeler_tick_age_seconds": 0.5,
            "clips_queued": 1,
            "clips_pending": 2,
            "privacy_dropped": {"frame": {"kitchen": 4}, "clip": {"kitchen": 1}},
        }
    )
    srv = MetricsServer("127.0.0.1:0", metrics, lambda: (health["ok"], {"tick_age_s": 0.5}), lambda: STATE)
    srv.start()
    yield srv, metrics, health
    srv.stop()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_metrics_parse_and_count_what_the_runner_observed(server) -> None:
    srv, metrics, _ = server
    fail = Verdict(False, 0.9, {"anchor_visible": True, "part_open": False})
    unreadable = Verdict(False, 0.0, {})
    metrics.observe_result(
        result_with(["accepted", "rejected", "rejected", "review"], [Verdict(True, 1.0), fail, unreadable, None]),
        StoredFrame("f1", "review", None, None, 2),
    )
    metrics.observe_result(result_with([], []), None)
    metrics.observe_batch({"detect": (0.2, 4), "validate": (1.5, 3)})
    code, body = get(f"http://{srv.bound}/metrics")
    assert code == 200
    got = samples(body.decode())
    assert got[("streamlabel_frames_labeled_total", ())] == 2
    assert got[("streamlabel_frames_stored_total", (("split", "review"),))] == 1
    assert got[("streamlabel_labels_total", (("status", "accepted"),))] == 1
    assert got[("streamlabel_labels_total", (("status", "rejected"),))] == 2
    assert got[("streamlabel_labels_total", (("status", "pending"),))] == 0
    assert got[("streamlabel_rejected_total", (("reason", "part_open"),))] == 1
    assert got[("streamlabel_rejected_total", (("reason", "unreadable"),))] == 1
    assert got[("streamlabel_stage_latency_seconds_count", (("stage", "validate"),))] == 1
    assert got[("streamlabel_stage_latency_seconds_sum", (("stage", "validate"),))] == pytest.approx(1.5)
    assert got[("streamlabel_stage_batch_size_sum", (("stage", "detect"),))] == 4
    assert got[("streamlabel_stream_sampled_frames_total", (("stream", "kitchen"),))] == 9
    assert got[("streamlabel_stream_reconnects_total", (("stream", "kitchen"),))] == 2
    assert got[("streamlabel_stream_restarts_total", (("stream", "garden"),))] == 5
    assert got[("streamlabel_stream_status", (("status", "offline"), ("stream", "garden")))] == 1
    assert got[("streamlabel_stream_status", (("status", "online"), ("stream", "garden")))] == 0
    assert got[("streamlabel_outbox_depth", ())] == 3
    assert got[("streamlabel_store_bytes", ())] == 1234
    assert got[("streamlabel_clips_queued", ())] == 1
    assert got[("streamlabel_clips_pending", ())] == 2
    assert got[("streamlabel_privacy_dropped_total", (("kind", "frame"), ("stream", "kitchen")))] == 4
    assert got[("streamlabel_privacy_dropped_total", (("kind", "clip"), ("stream", "kitchen")))] == 1


def test_two_daemons_do_not_share_a_registry() -> None:
    a, b = DaemonMetrics(), DaemonMetrics()
    a.frames.inc()
    assert samples(b.render().decode())[("streamlabel_frames_labeled_total", ())] == 0


def test_healthz_follows_the_labeler(server) -> None:
    srv, _, health = server
    code, body = get(f"http://{srv.bound}/healthz")
    assert code == 200 and json.loads(body)["ok"] is True
    health["ok"] = False
    code, body = get(f"http://{srv.bound}/healthz")
    assert code == 503 and json.loads(body) == {"ok": False, "tick_age_s": 0.5}
    assert get(f"http://{srv.bound}/nope")[0] == 404


def test_status_command_prints_the_table(server) -> None:
    srv, _, _ = server
    assert fetch_status(srv.bound)["pid"] == 4242
    result = CliRunner().invoke(app, ["status", "--address", srv.bound], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("kitchen", "garden", "online", "offline", "healthy", "no such file", "restart needed", "models"):
        assert text in result.output
    assert "***" in result.output


def test_status_reads_the_address_from_the_config(server, tmp_path: Path) -> None:
    srv, _, _ = server
    config = tmp_path / "c.yml"
    config.write_text(f"daemon:\n  metrics_address: {srv.bound}\n")
    result = CliRunner().invoke(app, ["status", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["streams"]["kitchen"]["sampled"] == 9


def test_status_says_clearly_when_no_daemon_runs() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(StatusUnavailableError, match="no streamlabel daemon answers"):
        fetch_status(address, timeout_s=5)
    result = CliRunner().invoke(app, ["status", "--address", address])
    assert result.exit_code == 1
    assert "no streamlabel daemon answers" in result.output


@pytest.mark.parametrize(
    ("address", "parsed", "url"),
    [
        ("127.0.0.1:9310", ("127.0.0.1", 9310), "http://127.0.0.1:9310/status"),
        ("0.0.0.0:9310", ("0.0.0.0", 9310), "http://127.0.0.1:9310/status"),
        ("[::1]:9310", ("::1", 9310), "http://[::1]:9310/status"),
        (":9310", ("127.0.0.1", 9310), "http://127.0.0.1:9310/status"),
    ],
)
def test_addresses(address: str, parsed: tuple[str, int], url: str) -> None:
    assert parse_address(address) == parsed
    assert status_url(address) == url


@pytest.mark.parametrize("bad", ["", "localhost", "host:port"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(bad)


def test_store_size_counts_every_file(tmp_path: Path) -> None:
    assert StoreSizer.measure(tmp_path) == 0
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "x.jpg").write_bytes(b"x" * 100)
    (tmp_path / "manifest.sqlite").write_bytes(b"y" * 23)
    assert StoreSizer.measure(tmp_path) == 123


def test_status_needs_no_credentials_to_find_the_daemon(server, tmp_path: Path) -> None:
    srv, _, _ = server
    config = tmp_path / "c.yml"
    config.write_text(
        "streams:\n  cam:\n    url: rtsp://u:${CAMERA_PASSWORD}@cam/s\n"
        f"mqtt:\n  host: localhost\n  password: ${{MQTT_PASSWORD}}\ndaemon:\n  metrics_address: {srv.bound}\n"
    )
    result = CliRunner().invoke(app, ["status", "-c", str(config), "--json"], env={"CREDENTIALS_DIRECTORY": ""})
    assert result.exit_code == 0, result.output


def test_status_with_metrics_off_says_so(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("daemon:\n  metrics_address: null\n")
    result = CliRunner().invoke(app, ["status", "-c", str(config)])
    assert result.exit_code == 2
    assert "metrics_address is off" in result.output
