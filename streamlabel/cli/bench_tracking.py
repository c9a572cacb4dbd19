"""``streamlabel bench tracking``: tracker and mask-consistency figures on the standard synthetic scene."""

from __future__ import annotations

from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("tracking")
def bench_tracking_cmd(
    seed: Annotated[int, typer.Option(help="Scene seed (0 is the standard scene).")] = 0,
    seconds: Annotated[float, typer.Option(help="Scene length in seconds.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Jitter raw vs tracked, ID switches, fragmentations, mask flicker and tracker time on a scene with truth."""
    import json

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
