"""``streamlabel bench soak``: the daemon on looping files with the tiny models, watched from outside.

``streamlabel run`` runs as a child process on two looping synthetic scenes (the tiny random-weight models, the
in-process tiny VLM as validator, clips on). Every ``interval_s`` the bench samples the child's resident memory
(``VmRSS``), open file descriptors and threads from ``/proc``, the frames and clips in its manifest (read-only),
and the frames labeled from its ``/metrics`` (on a free port of 127.0.0.1).
After ``minutes`` it sends SIGTERM and times the stop. Memory growth is measured from the first sample after the
warm-up (a fifth of the run, at least one interval) to the last; ``check_store`` then checks the store.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from streamlabel.store.check import check_store

STOP_WAIT_EXTRA_S = 60.0  # how long past stop_timeout_s the bench waits for the child before it kills it
STREAMS = ("grass", "yard")


def _proc_figures(pid: int) -> dict[str, float]:
    """Resident memory (MB), open file descriptors and threads of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    return {"rss_mb": round(rss_kb / 1024, 1), "open_files": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def _counts(db: Path) -> dict[str, int]:
    """Frames and clips in the manifest (a read-only connection beside the daemon's)."""
    if not db.is_file():
        return {"frames": 0, "clips": 0}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        frames = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        has_clips = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'clips'").fetchone()
        clips = con.execute("SELECT COUNT(*) FROM clips").fetchone()[0] if has_clips else 0
    except sqlite3.OperationalError:  # the schema is being created
        return {"frames": 0, "clips": 0}
    finally:
        con.close()
    return {"frames": int(frames), "clips": int(clips)}


def _labeled(log_path: Path) -> dict[str, float]:
    """Frames labeled and clips written or dropped so far, from the daemon's /metrics (its address is in its log)."""
    found = re.search(r"metrics on http://(127\.0\.0\.1:\d+)/metrics", log_path.read_text(errors="replace"))
    if found is None:
        return {}
    try:
        with urllib.request.urlopen(f"http://{found.group(1)}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for name, key in (
        ("frames_labeled", "labeled"),
        ("clips_written", "clips_written"),
        ("clips_dropped", "clips_dropped"),
    ):
        value = re.search(rf"^streamlabel_{name}_total (\S+)$", text, re.M)
        if value is not None:
            out[key] = float(value.group(1))
    return out


def _prepare(folder: Path, fps: float, stop_timeout_s: float) -> Path:
    """Tiny models, two looping scenes and the config file; returns the config path."""
    from streamlabel.tiny import build_all, tiny_config_dict
    from streamlabel.tiny.scene import SceneSpec, write_clip

    models = build_all(folder / "models")
    urls = {}
    for i, name in enumerate(STREAMS):
        urls[name] = str(folder / f"{name}.mp4")
        write_clip(SceneSpec(seconds=20.0, seed=i), Path(urls[name]))
    cfg = tiny_config_dict(models, folder / "store", urls, fps=fps)
    for stream in cfg["streams"].values():
        stream["loop"] = True
    cfg["daemon"] = {"metrics_address": "127.0.0.1:0", "stop_timeout_s": stop_timeout_s}  # a free local port
    path = folder / "streamlabel.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _watch(proc: subprocess.Popen[bytes], work: Path, minutes: float, interval_s: float) -> list[dict[str, Any]]:
    """Sample the child every ``interval_s`` for ``minutes``; stops early if it exits."""
    db = work / "store" / "manifest.sqlite"
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    end = started + minutes * 60
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(max(0.0, min(interval_s, end - time.monotonic())))
        if proc.poll() is not None:
            break
        sample = {"t_s": round(time.monotonic() - started, 1), **_proc_figures(proc.pid), **_counts(db)}
        sample.update(_labeled(work / "daemon.log"))
        if samples and "labeled" in sample and "labeled" in samples[-1]:
            dt = sample["t_s"] - samples[-1]["t_s"]
            sample["labeled_per_min"] = round((sample["labeled"] - samples[-1]["labeled"]) / dt * 60, 1)
        samples.append(sample)
    return samples


def _stop(proc: subprocess.Popen[bytes], stop_timeout_s: float) -> tuple[int | None, float]:
    """SIGTERM the child; its exit code (None: killed after the wait ran out) and how long it took."""
    started = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = proc.wait(stop_timeout_s + STOP_WAIT_EXTRA_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    return code, round(time.monotonic() - started, 2)


def summarize(samples: list[dict[str, Any]], minutes: float, interval_s: float) -> dict[str, Any]:
    """Growth of memory, files and threads from the end of the warm-up (a fifth of the run) to the last sample."""
    if not samples:
        return {}
    warm_s = max(interval_s, minutes * 60 / 5)
    base = next((s for s in samples if s["t_s"] >= warm_s), samples[-1])
    last = samples[-1]
    return {
        "warm_up_s": round(warm_s, 1),
        "rss_mb_after_warm_up": base["rss_mb"],
        "rss_mb_last": last["rss_mb"],
        "rss_growth_pct": round((last["rss_mb"] / base["rss_mb"] - 1) * 100, 2),
        "open_files": [base["open_files"], last["open_files"]],
        "threads": [base["threads"], last["threads"]],
        "frames_stored": last["frames"],
        "clips": last["clips"],
        "labeled": last.get("labeled"),
        "labeled_per_min_after_warm_up": _rate(base, last),
    }


def _rate(first: dict[str, Any], last: dict[str, Any]) -> float | None:
    if "labeled" not in first or "labeled" not in last or last["t_s"] <= first["t_s"]:
        return None
    return round((last["labeled"] - first["labeled"]) / (last["t_s"] - first["t_s"]) * 60, 1)


def bench_soak(
    minutes: float, interval_s: float = 30.0, fps: float = 2.0, stop_timeout_s: float = 30.0, folder: Path | None = None
) -> dict[str, Any]:
    """Run the daemon for ``minutes`` and return the samples, the summary and the stop's exit code and time."""
    work = Path(tempfile.mkdtemp(prefix="streamlabel-soak-", dir=folder))
    config = _prepare(work, fps, stop_timeout_s)
    log_path = work / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlabel.cli", "run", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        try:
            samples = _watch(proc, work, minutes, interval_s)
        finally:
            code, stop_s = _stop(proc, stop_timeout_s)
    problems = check_store(work / "store")
    return {
        "folder": str(work),
        "minutes": minutes,
        "fps": fps,
        "streams": list(STREAMS),
        "samples": samples,
        "summary": summarize(samples, minutes, interval_s),
        "stop": {"exit_code": code, "seconds": stop_s, "stop_timeout_s": stop_timeout_s},
        "check_store": problems,
        "log_tail": log_path.read_text(errors="replace").splitlines()[-5:],
    }
