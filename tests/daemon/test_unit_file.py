"""systemd/streamlabel.service: the settings the daemon relies on, and systemd's own hardening rating."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "streamlabel.service"
MAX_EXPOSURE = 2.0


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_service_contract() -> None:
    s = settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "WatchdogSec" in s and "StateDirectory" in s and "ConfigurationDirectory" in s and "CacheDirectory" in s
    assert any(v.startswith("MQTT_PASSWORD:") for v in s["LoadCredential"])
    assert s["DevicePolicy"] == ["closed"]
    allowed = " ".join(s["DeviceAllow"])
    assert "/dev/nvidiactl" in allowed and "char-video4linux" in allowed
    assert s["SupplementaryGroups"] == ["video render"]
    # GPU and JIT need these left off (see the comments in the unit).
    assert "MemoryDenyWriteExecute" not in s and "PrivateDevices" not in s


def test_stop_timeout_leaves_room_for_the_drain() -> None:
    from streamlabel.config import DaemonConfig
    from streamlabel.daemon.service import STOP_GRACE_S

    stop = settings()["TimeoutStopSec"][0]
    # The drain, then the housekeeping thread's and the sink's last grace, before systemd's SIGKILL.
    assert int(stop.rstrip("s")) > DaemonConfig().stop_timeout_s + STOP_GRACE_S


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_security_exposure_is_at_most_2() -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout
