"""``streamlabel bench tracking``: tracker and mask-consistency figures on the standard synthetic scene."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("tracking")
def bench_tracking_cmd(
    seed: Annotated[int, typer.Option(help="Scene seed (0 is the standard scene).")] = 0,
    seconds: Annotated[float, typer.Option(help="Scene length in seconds.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Compare with SORT, ByteTrack and OC-SORT on MOT sequences instead.")
    ] = False,
    gt: Annotated[
        list[Path] | None, typer.Option("--gt", help="With --compare: a MOT gt.txt to use (repeatable).")
    ] = None,
    fps: Annotated[float, typer.Option(help="With --gt: the frame rate of those sequences.")] = 25.0,
    noise_seeds: Annotated[int, typer.Option(min=1, help="With --compare: detector noise seeds per sequence.")] = 3,
) -> None:
    """Jitter raw vs tracked, ID switches, fragmentations, mask flicker and tracker time on a scene with truth."""
    import json

    if compare:
        _compare(gt, fps, noise_seeds, as_json)
        return
    from streamlabel.bench.tracking import bench_tracking
    from streamlabel.tracking.scenes import TrackingSceneSpec

    spec = TrackingSceneSpec(seed=seed, seconds=seconds)
    result = bench_tracking(spec, repeats=5)
    if as_json:
        print(json.dumps(result))
        return
    console.print(
        f"scene: seed {spec.seed}, {result['frames']} frames at {spec.fps:g} fps, {spec.dogs} dogs with 2 eyes, "
        f"1 person; {result['tracks_per_frame']} tracks per frame\n"
        f"  box jitter raw      {result['jitter_raw_px']:>8.3f} px RMS\n"
        f"  box jitter tracked  {result['jitter_tracked_px']:>8.3f} px RMS\n"
        f"  jitter ratio        {result['jitter_ratio']:>8.3f}  (anchors {result['jitter_ratio_anchors']:.3f}, "
        f"parts {result['jitter_ratio_parts']:.3f}; goal <= 0.6)\n"
        f"  id switches         {result['id_switches']:>8d}  (goal 0)\n"
        f"  fragmentations      {result['fragmentations']:>8d}\n"
        f"  mask flicker raw    {result['flicker_rate_raw']:>8.4f}\n"
        f"  mask flicker kept   {result['flicker_rate']:>8.4f}  ({result['flag_rate']:.4f} of masks flagged)\n"
        f"  tracker time        {result['ms_per_frame']:>8.3f} ms/frame wall, {result['cpu_ms_per_frame']:.3f} CPU  "
        "(goal <= 1)",
        highlight=False,
    )


def _compare(gt: list[Path] | None, fps: float, noise_seeds: int, as_json: bool) -> None:
    """``--compare``: IDF1, ID switches, MOTA and time per frame of each tracker (``bench.mot_compare``)."""
    import json

    from rich.table import Table

    from streamlabel.bench.mot import read_mot
    from streamlabel.bench.mot_compare import compare, default_sequences

    missing = [str(path) for path in gt or [] if not path.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)} (give MOT gt.txt files)", param_hint="--gt")
    sequences = [read_mot(path, fps) for path in gt] if gt else default_sequences()
    with console.status("tracking …"):
        result = compare(sequences, noise_seeds=range(noise_seeds))
    if as_json:
        print(json.dumps(result))
        return
    names = ", ".join(f"{s['name']} ({s['frames']} frames)" for s in result["sequences"])
    table = Table(title=f"{names}; {noise_seeds} detector noise seeds each")
    for col in ("tracker", "IDF1", "ID switches", "MOTA", "ms/frame", "CPU ms/frame"):
        table.add_column(col, justify="left" if col == "tracker" else "right")
    for name, f in result["trackers"].items():
        figures = (f"{f['idf1']:.3f}", str(f["id_switches"]), f"{f['mota']:.3f}")
        table.add_row(name, *figures, f"{f['ms_per_frame']:.3f}", f"{f['cpu_ms_per_frame']:.3f}")
    console.print(table)
    if "skipped" in result:
        console.print(result["skipped"], highlight=False)
