"""``streamlabel bench cluster``: the Ray engine's overhead against the in-process runner, and its scaling."""

from __future__ import annotations

from typing import Annotated

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("cluster")
def bench_cluster_cmd(
    streams: Annotated[int, typer.Option(min=1, help="File streams labeled at once.")] = 2,
    seconds: Annotated[float, typer.Option(min=1.0, help="Length of each generated clip (sampled at 5 fps).")] = 8.0,
    work_ms: Annotated[float, typer.Option(min=0.0, help="Stand-in stage cost per image, milliseconds.")] = 20.0,
    gpus: Annotated[float, typer.Option(min=0.0, help="GPUs per labeler actor (0 on a CPU machine).")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-frame overhead of the Ray path against the in-process runner, and frames/s with 1 and 2 labelers
    (needs the `ray` extra; starts a local Ray)."""
    import json

    try:
        from streamlabel.bench.cluster import bench_cluster
    except ImportError as exc:
        console.print(f"[red]bench cluster needs Ray: pip install 'streamlabel[ray]' ({exc})[/]")
        raise typer.Exit(1) from None
    result = bench_cluster(streams, seconds, work_ms, gpus)
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"{result['streams']} streams, {result['sampled_frames']} sampled frames", highlight=False)
    for name in ("in_process_idle", "ray_idle", "in_process_work", "ray_1_labeler", "ray_2_labelers"):
        r = result[name]
        console.print(
            f"  {name:<16} {r['frames_per_s']:>8.1f} frames/s  {r['ms_per_frame']:>7.2f} ms/frame", highlight=False
        )
    console.print(
        f"  Ray overhead {result['overhead_ms_per_frame']:.2f} ms/frame ({result['ray_over_in_process_time']:.2f}x "
        f"the in-process time with idle stages); 2 labelers give {result['two_over_one_labeler']:.2f}x 1 labeler",
        highlight=False,
    )
    t = result["transport_1080p"]
    console.print(
        f"  a 1080p frame through the object store: array {t['array']['bytes'] / 1e6:.2f} MB {t['array']['ms']} ms, "
        f"JPEG {t['jpeg']['bytes'] / 1e6:.3f} MB {t['jpeg']['ms']} ms",
        highlight=False,
    )
