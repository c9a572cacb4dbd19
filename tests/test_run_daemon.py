"""``streamlabel run`` in the foreground: labels a stream until SIGINT/SIGTERM, then stores what it has and exits 0."""

from __future__ import annotations

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
