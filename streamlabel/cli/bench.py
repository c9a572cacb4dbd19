"""``streamlabel bench``: benchmarks that print figures measured side by side in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("ingest")
def bench_ingest_cmd(
    file: Annotated[Path | None, typer.Argument(help="Video file (default: a generated 1080p H.264 clip).")] = None,
    fps: Annotated[float, typer.Option(help="Sampling rate.")] = 2.0,
    decode: Annotated[str, typer.Option(help="auto, all or keyframes (as streams.<name>.decode).")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plain decode speed versus source + sampler speed on one file, measured side by side."""
    import json
    import tempfile

    from streamlabel.bench.ingest import bench_ingest, make_1080p

    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-") as tmp:
        if file is None:
            console.print("generating a 10 s 1080p H.264 clip …")
            file = make_1080p(Path(tmp) / "bench_1080p.mp4")
        result = bench_ingest(file, fps, decode)
    if as_json:
        print(json.dumps(result))
        return
    console.print(
        f"{result['file']}: {result['frames']} frames, {result['duration_s']} s\n"
        f"  plain decode      {result['decode_fps']:>8.1f} frames/s\n"
        f"  source + sampler  {result['ingest_fps']:>8.1f} frames/s  ({result['mode']} decode, "
        f"{result['sampled']} sampled at {fps} fps)\n"
        f"  ratio             {result['ratio']:>8.3f}\n"
        f"  real-time factor  {result['realtime_factor']:>8.1f}x",
        highlight=False,
    )
