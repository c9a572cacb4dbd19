"""Runs ``streamlabel run`` as a subprocess with a test NOTIFY_SOCKET and reads its metrics and status; builds
scripted stages and validators for the in-process runner and daemon tests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streamlabel.pipeline import Stages
from streamlabel.stages.base import Candidate, ValidatorUnavailableError, Verdict
from tests.fixtures.rtsp import free_port
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter

START_DEADLINE_S = 240.0  # loading the tiny models on a busy 2-core machine
STEP_DEADLINE_S = 120.0


class DaemonProcess:
    """One daemon subprocess: its config file, notify socket, metrics address and log file."""

    def __init__(self, workdir: Path, cfg: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config = workdir / "streamlabel.yml"
        self.address = f"127.0.0.1:{free_port()}"
        cfg.setdefault("daemon", {})["metrics_address"] = self.address
        cfg.setdefault("review", {"address": None})  # no review page on a fixed port in tests
        self.write_config(cfg)
        self.log_path = workdir / "daemon.log"
        self.notify_name = f"streamlabel-test-{uuid.uuid4().hex}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(b"\0" + self.notify_name.encode())
        self.messages: list[dict[str, str]] = []
        self.env = {**os.environ, "NOTIFY_SOCKET": f"@{self.notify_name}", **(env or {})}
        self.env.pop("JOURNAL_STREAM", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, cfg: dict[str, Any] | str) -> None:
        text = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config)

    def start(self) -> DaemonProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlabel.cli", "run", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
            )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"daemon exited with {self.proc.returncode}:\n{self.log[-4000:]}"

    def wait_notify(self, key: str, deadline_s: float = STEP_DEADLINE_S) -> dict[str, str]:
        """Wait for a datagram with ``key`` (READY, WATCHDOG, ...); earlier ones are kept in ``messages``."""
        end = time.monotonic() + deadline_s
        while True:
            self.assert_alive()
            left = end - time.monotonic()
            assert left > 0, f"no {key}= from the daemon; got {self.messages}\n{self.log[-3000:]}"
            self.notify.settimeout(min(1.0, left))
            try:
                data = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            self.messages.append(fields)
            if key in fields:
                return fields

    def drain_notify(self) -> list[dict[str, str]]:
        """Every datagram received so far, including those still queued on the socket (also after exit)."""
        self.notify.setblocking(False)
        try:
            while True:
                data = self.notify.recv(4096).decode()
                self.messages.append(dict(line.split("=", 1) for line in data.split("\n") if "=" in line))
        except BlockingIOError:
            pass
        finally:
            self.notify.setblocking(True)
        return self.messages

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        code, body = self.get("/metrics")
        assert code == 200
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200
        return json.loads(body)

    def until(self, check: Callable[[], Any], what: str, deadline_s: float = STEP_DEADLINE_S) -> Any:
        """Poll ``check`` until it returns something truthy, while the daemon is alive."""
        end = time.monotonic() + deadline_s
        while True:
            self.assert_alive()
            got = check()
            if got:
                return got
            assert time.monotonic() < end, f"timed out waiting for {what}\n{self.log[-3000:]}"
            time.sleep(0.2)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout_s: float) -> tuple[int, float]:
        """SIGTERM and wait; returns (exit status, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the daemon dumps every thread's stack into its log
            time.sleep(1)  # give the dump a moment before the kill in close()
            raise AssertionError(f"no exit {timeout_s:.0f} s after SIGTERM:\n{self.log[-6000:]}") from None
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.notify.close()


def stream_metric(m: dict, name: str, stream: str) -> float:
    return m.get((name, (("stream", stream),)), 0.0)


def manifest_frames(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]


def reported_stored(log: str) -> tuple[int, int]:
    """(labeled, stored) from the daemon's final ``stopped:`` line."""
    match = re.search(r"stopped: labeled=(\d+) stored=(\d+)", log)
    assert match, log[-3000:]
    return int(match.group(1)), int(match.group(2))


def wait_until(check: Callable[[], Any], what: str, deadline_s: float = STEP_DEADLINE_S) -> Any:
    """Poll ``check`` until it returns something truthy; fails naming ``what`` after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while not (got := check()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)
    return got


class EveryFrame(dict):
    """A detector script with the same dog in every frame, whatever its index pixel says."""

    def get(self, key: object, default: object = None) -> list[list[float]]:
        return [[20.0, 20.0, 140.0, 120.0]]


class CountingDetector(ScriptedDetector):
    """The same dog in every frame; counts the images it saw and fails once it saw more than ``fail_after``."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(EveryFrame())
        self.seen = 0
        self.fail_after = fail_after

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        if self.fail_after is not None and self.seen + len(images) > self.fail_after:
            raise RuntimeError(f"detector failed after {self.seen} images (scripted crash)")
        self.seen += len(images)
        return super().detect(images)


class HeldValidator(CountingValidator):
    """Passes every candidate; calls from the threads named in ``hold_in`` first wait for ``release``, those from
    threads named in ``away_in`` raise ValidatorUnavailableError (a validator that is down for them)."""

    def __init__(self, hold_in: tuple[str, ...] = (), away_in: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.hold_in, self.away_in = hold_in, away_in
        self.entered = threading.Event()
        self.release = threading.Event()

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        name = threading.current_thread().name
        if name in self.away_in:
            raise ValidatorUnavailableError(f"scripted: away for the {name} thread")
        if name in self.hold_in:
            self.entered.set()
            assert self.release.wait(STEP_DEADLINE_S), "the test never released the validator"
        return super().validate(items)


def scripted_stages(validator: Any = None, detector: ScriptedDetector | None = None) -> Stages:
    """Scripted stages: a dog in every frame, two eyes in every dog, box masks, and ``validator``."""
    return Stages(
        detector or CountingDetector(),
        ScriptedGrounder(),
        ScriptedSegmenter(),
        validator if validator is not None else CountingValidator(),
    )
