"""``streamlabel run`` as a service: a subprocess with the tiny models, a test NOTIFY_SOCKET and its metrics.

It labels until SIGINT/SIGTERM, then stores what it has and exits 0; SIGHUP adds streams or is refused with the
old config kept; a crash-looping stream goes offline without touching the others.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from streamlabel.store.check import check_store
from streamlabel.tiny import TinyModels, tiny_config_dict
from tests.daemon.harness import DaemonProcess, manifest_frames, reported_stored, stream_metric
from tests.fixtures.rtsp import free_port


def stored_frames(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:  # the daemon has not created the tables yet
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(tmp_path: Path, tiny_models: TinyModels, scene_clip, signum: int) -> None:
    clip, _ = scene_clip
    store = tmp_path / "store"
    cfg = tiny_config_dict(tiny_models, store, {"loop": str(clip)}, fps=5)
    cfg["streams"]["loop"]["loop"] = True  # a file that never ends stands in for a camera
    cfg["daemon"] = {"metrics_address": f"127.0.0.1:{free_port()}"}
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlabel.cli", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while stored_frames(store / "manifest.sqlite") < 3:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no frame stored in time"
            time.sleep(0.2)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "streamlabel summary" in out + err
    assert check_store(store) == []
    assert stored_frames(store / "manifest.sqlite") >= 3


STOP_TIMEOUT_S = 60.0
LABELED = "streamlabel_frames_labeled_total"
SAMPLED = "streamlabel_stream_sampled_frames_total"


def service_config(tiny_models: TinyModels, store: Path, streams: dict[str, str]) -> dict:
    cfg = tiny_config_dict(tiny_models, store, streams, fps=5)
    for s in cfg["streams"].values():
        s["loop"] = True
    cfg["daemon"] = {"stop_timeout_s": STOP_TIMEOUT_S, "max_restarts": 1, "restart_backoff_s": 0.1}
    return cfg


@pytest.mark.slow
def test_service_lifecycle(tmp_path: Path, tiny_models: TinyModels, scene_clip) -> None:
    """READY, metrics that rise, watchdog, crash-loop guard, SIGHUP add and bad reload, SIGTERM drain."""
    clip, _ = scene_clip
    store = tmp_path / "store"
    cfg = service_config(tiny_models, store, {"cam": str(clip), "broken": str(tmp_path / "missing.mp4")})
    cfg["streams"]["broken"]["loop"] = False
    daemon = DaemonProcess(tmp_path, cfg, env={"WATCHDOG_USEC": "2000000"}).start()
    try:
        ready = daemon.wait_notify("READY", 240)
        assert "streams online" in ready.get("STATUS", "")
        code, body = daemon.get("/healthz")
        assert code == 200 and b'"ok": true' in body

        # Labels flow and the counters rise.
        first = daemon.until(lambda: daemon.metrics().get((LABELED, ()), 0) >= 2 and daemon.metrics(), "frames")
        daemon.until(lambda: daemon.metrics()[(LABELED, ())] > first[(LABELED, ())], "the frame counter to rise")
        daemon.wait_notify("WATCHDOG")

        # The broken stream is restarted once, then left offline; cam is not touched.
        broken = daemon.until(
            lambda: (s := daemon.status()["streams"]["broken"])["status"] == "offline" and s["restarts"] == 1 and s,
            "the broken stream to go offline",
        )
        assert "no such file" in broken["detail"]
        m = daemon.metrics()
        assert m[("streamlabel_stream_status", (("status", "offline"), ("stream", "broken")))] == 1
        assert stream_metric(m, "streamlabel_stream_restarts_total", "cam") == 0
        assert m[("streamlabel_clips_pending", ())] == 0 and ("streamlabel_clips_queued", ()) in m  # read live

        # SIGHUP with a new stream: it starts, the old one goes on.
        cam_before = stream_metric(daemon.metrics(), SAMPLED, "cam")
        cfg["streams"]["cam2"] = {**cfg["streams"]["cam"]}
        daemon.write_config(cfg)
        daemon.signal(signal.SIGHUP)
        daemon.wait_notify("RELOADING")
        daemon.wait_notify("READY")
        daemon.until(lambda: stream_metric(daemon.metrics(), SAMPLED, "cam2") > 0, "the added stream to sample")
        assert stream_metric(daemon.metrics(), SAMPLED, "cam") >= cam_before
        state = daemon.status()
        assert state["streams"]["cam"]["restarts"] == 0 and state["reloads"] == {"applied": 1, "rejected": 0}

        # SIGHUP with a broken file: refused with key and line, the running config stays.
        daemon.write_config("streams:\n  cam:\n    url: x.mp4\n    fps: -1\n")
        daemon.signal(signal.SIGHUP)
        daemon.until(lambda: "reload rejected" in daemon.log and "streams.cam.fps" in daemon.log, "the refusal")
        assert "line 4" in daemon.log
        daemon.until(lambda: daemon.status()["reloads"]["rejected"] == 1, "the rejected reload in /status")
        before = daemon.metrics()[(LABELED, ())]
        daemon.until(lambda: daemon.metrics()[(LABELED, ())] > before, "labeling to go on after the refusal")
        assert set(daemon.status()["streams"]) == {"cam", "cam2", "broken"}

        # SIGTERM: drain, exit 0 in time, and every frame the daemon reported is in the manifest.
        seen = daemon.status()["frames_stored"]
        code, took = daemon.stop(STOP_TIMEOUT_S + 30)
        assert code == 0, daemon.log[-3000:]
        assert took < STOP_TIMEOUT_S + 10
        assert any("STOPPING" in m for m in daemon.drain_notify())
    finally:
        daemon.close()
    labeled, stored = reported_stored(daemon.log)
    assert stored >= seen and labeled >= stored
    assert manifest_frames(store / "manifest.sqlite") == stored
    assert check_store(store) == []
    events = [line for line in (store / "events.jsonl").read_text().splitlines() if '"status"' in line]
    assert '"offline"' in [e for e in events if '"cam"' in e][-1]


@pytest.mark.slow
def test_service_on_an_rtsp_camera(tmp_path: Path, tiny_models: TinyModels, rtsp_server_factory) -> None:
    """A live GStreamer RTSP stream with a password: online, labeled, never logged, and a clean SIGTERM."""
    camera = rtsp_server_factory(auth="viewer:s3cret-pw").start()
    store = tmp_path / "store"
    cfg = service_config(tiny_models, store, {"door": camera.url})
    cfg["streams"]["door"]["fps"] = 2
    daemon = DaemonProcess(tmp_path, cfg).start()
    try:
        daemon.wait_notify("READY", 240)
        daemon.until(lambda: daemon.status()["streams"]["door"]["status"] == "online", "the camera to be online")
        daemon.until(lambda: daemon.metrics().get((LABELED, ()), 0) >= 3, "frames from the camera")
        assert stream_metric(daemon.metrics(), SAMPLED, "door") >= 3
        assert "rtsp://viewer:***@" in daemon.status()["streams"]["door"]["url"]
        code, _ = daemon.stop(STOP_TIMEOUT_S + 30)
        assert code == 0, daemon.log[-3000:]
    finally:
        daemon.close()
    _, stored = reported_stored(daemon.log)
    assert manifest_frames(store / "manifest.sqlite") == stored
    assert "s3cret-pw" not in daemon.log


@pytest.mark.slow
def test_service_events_over_mqtt(tmp_path: Path, tiny_models: TinyModels, scene_clip, mosquitto_factory) -> None:
    """The sink is wired: stream status, stats and availability reach a real broker; the password comes from
    $CREDENTIALS_DIRECTORY (systemd LoadCredential) and never reaches the log."""
    import json
    import threading

    import paho.mqtt.client as mqtt

    secret = "mqtt-s3cret"
    broker = mosquitto_factory(users={"streamlabel": secret, "watcher": "w"}).start()
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "MQTT_PASSWORD").write_text(secret + "\n")
    clip, _ = scene_clip
    cfg = service_config(tiny_models, tmp_path / "store", {"cam": str(clip)})
    cfg["mqtt"] = {
        "host": broker.host,
        "port": broker.port,
        "username": "streamlabel",
        "password": "${MQTT_PASSWORD}",
        "stats_interval_s": 1,
    }
    got: list[tuple[str, str]] = []
    lock = threading.Lock()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
    sub.username_pw_set("watcher", "w")
    sub.on_connect = lambda c, *_a: c.subscribe("streamlabel/#", qos=1)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append((msg.topic, msg.payload.decode()))

    def seen(topic: str, test: str) -> bool:
        with lock:
            return any(t == topic and test in p for t, p in got)

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    daemon = DaemonProcess(tmp_path, cfg, env={"CREDENTIALS_DIRECTORY": str(creds)}).start()
    try:
        daemon.wait_notify("READY", 240)
        daemon.until(lambda: seen("streamlabel/available", "online"), "available online")
        daemon.until(lambda: seen("streamlabel/cam/status", '"online"'), "the stream's online status")
        daemon.until(lambda: seen("streamlabel/stats", '"cam"'), "a stats event")
        daemon.until(lambda: daemon.status()["sink_connected"], "the sink to report connected")
        code, _ = daemon.stop(STOP_TIMEOUT_S + 30)
        assert code == 0, daemon.log[-3000:]
        deadline = time.monotonic() + 30
        while not (seen("streamlabel/available", "offline") and seen("streamlabel/cam/status", '"offline"')):
            assert time.monotonic() < deadline, got[-10:]
            time.sleep(0.1)
    finally:
        daemon.close()
        sub.loop_stop()
        sub.disconnect()
    stats = [json.loads(p) for t, p in got if t == "streamlabel/stats"]
    assert stats[-1]["streams"]["cam"]["sampled"] > 0
    assert secret not in daemon.log


@pytest.mark.slow
def test_sigterm_respects_the_stop_timeout(tmp_path: Path, tiny_models: TinyModels, scene_clip) -> None:
    """With more queued work than stop_timeout_s allows, the daemon stops in time and says what it left."""
    clip, _ = scene_clip
    store = tmp_path / "store"
    cfg = service_config(tiny_models, store, {"a": str(clip), "b": str(clip), "c": str(clip)})
    stop_timeout_s = 2.0
    cfg["daemon"]["stop_timeout_s"] = stop_timeout_s
    daemon = DaemonProcess(tmp_path, cfg).start()
    try:
        daemon.wait_notify("READY", 240)

        def backlog() -> bool:
            m = daemon.metrics()
            sampled = sum(stream_metric(m, SAMPLED, s) for s in "abc")
            return m.get((LABELED, ()), 0) >= 1 and sampled - m[(LABELED, ())] >= 24

        daemon.until(backlog, "a backlog of queued frames")
        code, took = daemon.stop(60)
        assert code == 0, daemon.log[-3000:]
    finally:
        daemon.close()
    # The drain ends at the timeout, plus at most the batch in flight and the sink's last delivery.
    assert took < stop_timeout_s + 15, took
    assert "were not labeled" in daemon.log
    _, stored = reported_stored(daemon.log)
    assert manifest_frames(store / "manifest.sqlite") == stored
    assert check_store(store) == []


def run_files(config: Path, clip: Path) -> str:
    """``streamlabel run --source <file>`` to its end (no signal); returns its output, asserting exit 0."""
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC")}
    done = subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "run", "-c", str(config), "--source", str(clip)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    return out


def max_seq(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT MAX(seq) FROM frames").fetchone()[0]


@pytest.mark.slow
def test_run_on_a_file_ends_by_itself_and_a_second_run_resumes(tmp_path: Path, tiny_models: TinyModels, scene_clip):
    """`make run SOURCE=file.mp4`: every stream is a file, so `run` ends when it is read and says where the
    dataset is; run again, it resumes after the last stored frame: nothing labeled twice, no store error."""
    clip, _ = scene_clip
    store = tmp_path / "store"
    cfg = tiny_config_dict(tiny_models, store, {}, fps=2)
    cfg["target"]["validation"]["enabled"] = False  # the run's end and the resume are the point, not verdicts
    cfg["daemon"] = {"metrics_address": None}
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(cfg))

    first = run_files(config, clip)
    assert f"the dataset is in {store}" in first
    labeled, stored = reported_stored(first)
    assert labeled == 4 and stored >= 1  # 2 s at 2 fps
    last = max_seq(store / "manifest.sqlite")

    second = run_files(config, clip)
    assert f"resuming after sampled frame {last}" in second
    again, stored_again = reported_stored(second)
    assert again == labeled - 1 - last  # only the frames after the last stored one
    assert manifest_frames(store / "manifest.sqlite") == stored + stored_again
    assert "UNIQUE" not in first + second and "not stored" not in second
    assert check_store(store) == []
