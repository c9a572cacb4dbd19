"""``streamlabel bench store``: the write speed of ``store.durability`` 'process' against 'power'."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("store")
def bench_store_cmd(
    frames: Annotated[int, typer.Option(min=4, help="Frames written per setting.")] = 80,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Where the two scratch stores go (the disk you will store on).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Frames/s that the store writes with durability 'process' and 'power', side by side on one disk."""
    import json

    from streamlabel.bench.store import bench_store

    result = bench_store(frames, folder)
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"{result['frames']} frames (1280x720, 2 labels) per setting, written under {result['folder']}")
    for setting, figures in result["settings"].items():
        console.print(
            f"  {setting:<8} {figures['frames_per_s']:>8.1f} frames/s  {figures['ms_per_frame']:>7.1f} ms/frame",
            highlight=False,
        )
    console.print(f"  power takes {result['power_over_process_time']:.2f}x the time of process", highlight=False)
