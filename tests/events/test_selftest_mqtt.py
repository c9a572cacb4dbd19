"""`streamlabel selftest --mqtt HOST:PORT` publishes the run's events to a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.events.synth import Subscriber
from tests.fixtures.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def selftest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "selftest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_selftest_publishes_its_events(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, "streamlabel/#")
    try:
        run = selftest("--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--out", str(tmp_path))
        assert run.returncode == 0, run.stderr[-3000:]
        (line,) = [ln for ln in run.stderr.splitlines() if ln.startswith("events:")]
        delivered, _, total = line.split()[1:4]
        assert int(delivered) == int(total) > 0
        assert sub.wait_for(lambda m: len(m) >= int(total))
    finally:
        sub.close()
    events = sub.events("/label") + sub.events("/review") + sub.events("/rejected") + sub.events("/clip")
    assert len({e["id"] for e in events}) == int(total)  # every outbox row, clips of finished tracks included
    assert sub.payloads("streamlabel/available")[-1] == b"offline"
    # The run publishes the stream's state (retained: the latest one wins, an earlier one may be coalesced).
    statuses = [e["status"] for e in sub.events("selftest/status")]
    assert statuses[-1] == "finished" and set(statuses) <= {"online", "finished"}


def test_selftest_rejects_a_bad_broker_address() -> None:
    run = selftest("--mqtt", "host:notaport")
    assert run.returncode == 2 and "--mqtt must be HOST:PORT" in run.stderr
