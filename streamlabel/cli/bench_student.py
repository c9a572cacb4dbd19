"""``streamlabel bench student``: the student's speed against detect + ground + segment, side by side in one run."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from streamlabel.cli.common import bench_app, console


@bench_app.command("student")
def bench_student_cmd(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    frames: Annotated[int, typer.Option(min=1, help="Frames per timed call (one batch).")] = 8,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls per model (median is kept).")] = 3,
    imgsz: Annotated[int, typer.Option(min=32, help="The student's inference size (models.student.imgsz).")] = 640,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Milliseconds per frame of a YOLO11n-seg student and of detect + ground + segment on the same frames, with
    full-size random-weight architectures (no download), and the ratio."""
    import json

    from streamlabel.bench.student import bench_student

    with console.status("benchmarking the student …") as status:
        result = bench_student(device, frames, repeats, imgsz, progress=lambda msg: status.update(msg))
    if as_json:
        print(json.dumps(result))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    ms, arch = result["ms_per_frame"], result["architectures"]
    console.print(
        f"{result['frames']} frames of {result['frame'][0]}x{result['frame'][1]} per call on {result['device_name']} "
        f"({result['device']}, {result['dtype']}), median of {result['repeats']}",
        highlight=False,
    )
    for name in ("detect", "ground", "segment"):
        console.print(f"  {name:<8} {ms[name]:>9.1f} ms/frame  {arch[name]}", highlight=False)
    console.print(f"  {'pipeline':<8} {result['pipeline_ms_per_frame']:>9.1f} ms/frame  detect + ground + segment")
    console.print(f"  {'student':<8} {ms['student']:>9.1f} ms/frame  {arch['student']}", highlight=False)
    console.print(f"  ratio    {result['ratio']:>9.2f}x  (pipeline / student)", highlight=False)
    console.print(
        f"  the gate saves time once more than {100 * result['gate_break_even_closed']:.1f}% of frames are closed",
        highlight=False,
    )


@bench_app.command("student-gate")
def bench_student_gate_cmd(
    seeds: Annotated[int, typer.Option(min=1, help="Scripted sequences (1, 2 or 3 dogs in turn).")] = 3,
    frames: Annotated[int, typer.Option(min=10, max=1000, help="Frames per sequence (2 fps).")] = 120,
    miss_rates: Annotated[str, typer.Option(help="Comma-separated per-eye miss rates of the scripted student.")] = (
        "0.02,0.1,0.3"
    ),
    closed_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of frames where a dog's eyes cannot be seen (0.06: blinks).")
    ] = 0.06,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What models.student.gate saves (frames grounded, parts segmented) and costs (correct labels) on the quality
    benchmark's scripted scenes, for scripted students that miss eyes at the given rates."""
    import json

    from streamlabel.bench.student_gate import bench_gate

    try:
        rates = [float(r) for r in miss_rates.split(",") if r.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"miss rates must be numbers (got {miss_rates!r})", param_hint="--miss-rates"
        ) from None
    if not rates or not all(0.0 <= r <= 1.0 for r in rates):
        raise typer.BadParameter("give miss rates between 0 and 1", param_hint="--miss-rates")
    with console.status("labeling the scripted scenes with the gate off and on …"):
        result = bench_gate(seeds, frames, rates, closed_rate)
    if as_json:
        print(json.dumps(result))
        return
    _print_gate(result)


def _print_gate(result: dict[str, Any]) -> None:
    from rich.table import Table

    title = (
        f"student gate: {result['seeds']} sequences x {result['frames_per_seed']} frames, eyes unseen in "
        f"{result['closed_rate']:.0%} of frames per dog"
    )
    table = Table(title=title)
    columns = (
        "student misses",
        "frames gated",
        "grounded",
        "segmented",
        "validated",
        "correct labels lost",
        "precision",
    )
    for col in columns:
        table.add_column(col, justify="right")
    for r in result["rows"]:
        off, on = r["off"], r["on"]
        table.add_row(
            f"{r['student']['miss_rate']:.0%} of eyes",
            str(on["gated"]),
            f"{r['grounded_share']:.1%}",
            f"{r['segmented_share']:.1%}",
            f"{on['validated'] / max(off['validated'], 1):.1%}",
            f"{r['correct_lost']} of {off['correct']}",
            f"{off['precision']:.3f} / {on['precision']:.3f}",
        )
    console.print(table)
