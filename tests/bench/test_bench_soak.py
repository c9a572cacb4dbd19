"""``bench soak``: the figures it samples from /proc and how it sums up a run (the run itself takes minutes)."""

from __future__ import annotations

import os
import subprocess
import sys

from streamlabel.bench.soak import _proc_figures, _stop, summarize


def test_proc_figures_follow_the_process() -> None:
    before = _proc_figures(os.getpid())
    files = [open(os.devnull) for _ in range(5)]  # noqa: SIM115
    try:
        after = _proc_figures(os.getpid())
    finally:
        for f in files:
            f.close()
    assert after["open_files"] == before["open_files"] + 5
    assert before["rss_mb"] > 10 and before["threads"] >= 1


def test_summary_measures_growth_after_the_warm_up() -> None:
    samples = [
        {
            "t_s": 60.0 * i,
            "rss_mb": rss,
            "open_files": 10,
            "threads": 21,
            "frames": 10 * i,
            "clips": i,
            "labeled": 100 * i,
        }
        for i, rss in enumerate([900.0, 1000.0, 1000.0, 1010.0, 1020.0, 1030.0], start=1)
    ]
    s = summarize(samples, minutes=6, interval_s=60)
    assert s["warm_up_s"] == 72.0  # a fifth of the run
    assert (s["rss_mb_after_warm_up"], s["rss_mb_last"], s["rss_growth_pct"]) == (1000.0, 1030.0, 3.0)
    assert s["labeled_per_min_after_warm_up"] == 100.0 and s["open_files"] == [10, 10]


def test_stop_reports_the_exit_code_and_the_time() -> None:
    script = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(3)); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"  # the handler is installed
    code, took = _stop(child, stop_timeout_s=5)
    child.stdout.close()
    assert code == 3 and took < 5
