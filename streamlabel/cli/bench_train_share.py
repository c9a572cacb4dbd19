"""``streamlabel bench train-share``: labeling frames/s alone and while ``streamlabel train`` runs beside it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("train-share")
def bench_train_share_cmd(
    frames: Annotated[int, typer.Option(min=1, help="Frames the labeler labels in each timing.")] = 32,
    device: Annotated[
        str, typer.Option(help="The labeler's device: cpu (tiny models) or cuda (full-size random architectures).")
    ] = "cpu",
    train_device: Annotated[str, typer.Option(help="train.device of the training child: cpu, 0, cuda:1.")] = "cpu",
    epochs: Annotated[
        int, typer.Option(min=1, max=1000, help="Epochs asked of the child (it is stopped when the timing ends).")
    ] = 1000,
    imgsz: Annotated[int, typer.Option(min=32, help="train.imgsz of the child.")] = 64,
    max_gpu_memory_gb: Annotated[
        float, typer.Option("--max-gpu-memory-gb", min=0.1, help="train.max_gpu_memory_gb when it trains on a GPU.")
    ] = 8.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Time the real Labeler on FRAMES frames alone, then while a real `streamlabel train` child trains."""
    import json

    from streamlabel.bench.train_share import bench_train_share

    if device not in ("cpu", "cuda"):
        console.print(f"[red]--device {device!r}: use cpu or cuda[/]", highlight=False)
        raise typer.Exit(2)
    say = None if as_json else (lambda msg: console.print(msg, style="dim", highlight=False))
    result = bench_train_share(frames, device, train_device, epochs, imgsz, max_gpu_memory_gb, say)
    if as_json:
        print(json.dumps(result))
    else:
        _print(result)


def _print(result: dict[str, Any]) -> None:
    alone, shared, train = result["alone"], result["while_training"], result["train"]
    load = ", ".join(f"{x:g}" for x in result["load_average"])
    console.print(
        f"labeler on {result['device']} ({result['models']}), {result['frames']} frames in batches of "
        f"{result['batch']}; training on {train['device']} (imgsz {train['imgsz']}); load average before: {load} "
        f"on {result['cpu_count']} cores",
        highlight=False,
    )
    console.print(f"alone:          {alone['frames_per_s']:.2f} frames/s ({alone['seconds']:.1f} s)", highlight=False)
    console.print(
        f"while training: {shared['frames_per_s']:.2f} frames/s ({shared['seconds']:.1f} s); "
        f"ratio {result['ratio']:.2f}",
        highlight=False,
    )
    outlasted = "it was still training at the end" if train["running_at_end"] else "it had ended before"
    console.print(
        f"training: {train['epochs_during']} epoch(s) during the timing, {train['epochs_done']} in all in "
        f"{train['trained_s']:.1f} s ({outlasted}; "
        f"exit code {train['exit_code']} after the stop)",
        highlight=False,
    )
    if "peak_gpu_gb" in alone:
        cap = train["max_gpu_memory_gb"]
        console.print(
            f"GPU memory: labeler peak {max(alone['peak_gpu_gb'], shared['peak_gpu_gb']):.2f} GiB; training peak "
            f"{train['peak_gpu_gb'] if train['peak_gpu_gb'] is not None else 'n/a'} GiB under a cap of "
            f"{'none' if cap is None else f'{cap:g} GiB'} (train.max_gpu_memory_gb)",
            highlight=False,
        )
