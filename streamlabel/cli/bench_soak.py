"""``streamlabel bench soak``: memory, open files, threads and throughput of a long daemon run, and its stop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("soak")
def bench_soak_cmd(
    minutes: Annotated[float, typer.Option(min=0.5, help="How long the daemon runs before the SIGTERM.")] = 10.0,
    interval_s: Annotated[float, typer.Option("--interval-s", min=1.0, help="Seconds between samples.")] = 30.0,
    fps: Annotated[float, typer.Option(min=0.1, help="Sampled frames per second of each of the two streams.")] = 2.0,
    stop_timeout_s: Annotated[float, typer.Option("--stop-timeout-s", min=1.0, help="daemon.stop_timeout_s.")] = 30.0,
    folder: Annotated[Path | None, typer.Option("--dir", help="Where the scratch folder goes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run ``streamlabel run`` on two looping files with the tiny models; watch it, then stop it and time that."""
    import json

    from streamlabel.bench.soak import bench_soak

    result = bench_soak(minutes, interval_s, fps, stop_timeout_s, folder)
    if as_json:
        print(json.dumps(result))
    else:
        _print(result)
    stop = result["stop"]
    if stop["exit_code"] != 0 or stop["seconds"] > stop["stop_timeout_s"] or result["check_store"]:
        raise typer.Exit(1)


def _print(result: dict) -> None:
    streams = len(result["streams"])
    head = f"soak: {result['minutes']:g} min, {streams} looping streams at {result['fps']:g} fps in {result['folder']}"
    console.print(head, highlight=False)
    console.print("   t_s   rss_mb  files  threads  labeled  labeled/min  stored  clips", highlight=False)
    for s in result["samples"]:
        console.print(
            f"{s['t_s']:>6.0f} {s['rss_mb']:>8.1f} {s['open_files']:>6} {s['threads']:>8} "
            f"{s.get('labeled', float('nan')):>8.0f} {s.get('labeled_per_min', float('nan')):>12.1f} "
            f"{s['frames']:>7} {s['clips']:>6}",
            highlight=False,
        )
    summary, stop = result["summary"], result["stop"]
    if summary:
        console.print(
            f"memory after the warm-up ({summary['warm_up_s']:.0f} s): {summary['rss_mb_after_warm_up']:.1f} -> "
            f"{summary['rss_mb_last']:.1f} MB ({summary['rss_growth_pct']:+.2f}%); open files "
            f"{summary['open_files'][0]} -> {summary['open_files'][1]}; threads {summary['threads'][0]} -> "
            f"{summary['threads'][1]}",
            highlight=False,
        )
    problems = len(result["check_store"])
    console.print(
        f"stop: exit {stop['exit_code']} after {stop['seconds']:.1f} s (stop_timeout_s {stop['stop_timeout_s']:g}); "
        f"check_store: {problems} problem(s)",
        highlight=False,
    )
