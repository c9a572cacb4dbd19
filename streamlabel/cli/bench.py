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
    hwaccel: Annotated[
        str, typer.Option(help="Also time the source with this hwaccel (as streams.<name>.hwaccel), side by side.")
    ] = "none",
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
        try:
            result = bench_ingest(file, fps, decode, hwaccel)
        except ValueError as exc:  # pydantic's ValidationError of an unknown hwaccel type
            raise typer.BadParameter(str(exc).splitlines()[-1], param_hint="--hwaccel") from None
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
    if "hwaccel" in result:
        used = result["hwaccel_used"] or "software (fell back)"
        console.print(
            f"  with hwaccel {result['hwaccel']} ({used}): {result['hwaccel_ingest_fps']:.1f} frames/s, "
            f"{result['hwaccel_speedup']:.3f}x the software source",
            highlight=False,
        )


@bench_app.command("stages")
def bench_stages_cmd(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batches: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,4,16",
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per stage and batch size (median is kept).")] = 3,
    vlm: Annotated[
        bool | None,
        typer.Option(
            "--vlm/--no-vlm",
            help="Build and time the 4B-class VLM (8 GB in bfloat16). Default: on CUDA only.",
            show_default=False,
        ),
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME:KEY=VALUE[,KEY=VALUE…], repeatable: a config variant timed side by side with the defaults, "
            "e.g. ground512:models.ground.input_short_side_px=512 or compiled:models.compile=default.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-stage latency and throughput of full-size architectures with random weights (no download)."""
    import json

    from pydantic import ValidationError

    from streamlabel.bench.stages import bench_stages
    from streamlabel.bench.variants import parse_variants

    try:
        sizes = [int(b) for b in batches.split(",") if b.strip()]
    except ValueError:
        raise typer.BadParameter(f"batch sizes must be integers (got {batches!r})", param_hint="--batches") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("give at least one batch size >= 1", param_hint="--batches")
    try:
        variants = parse_variants(variant or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--variant") from None
    with console.status("benchmarking stages …") as status:
        try:
            result = bench_stages(
                device, sizes, repeats, progress=lambda msg: status.update(msg), vlm=vlm, variants=variants
            )
        except ValidationError as exc:
            raise typer.BadParameter(f"a variant gives an invalid config: {exc}", param_hint="--variant") from None
    if as_json:
        print(json.dumps(result))
        return
    _print_stages(result)


def _print_stages(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"stages on {result['device_name']} ({result['device']}, {result['dtype']})")
    for col in ("variant", "stage", "batch", "latency ms", "ms/frame", "frames/s"):
        table.add_column(col, justify="right" if col not in ("variant", "stage") else "left")
    for r in result["stages"]:
        figures = (f"{r['latency_ms']:.1f}", f"{r['ms_per_frame']:.1f}", f"{r['frames_per_s']:.2f}")
        table.add_row(r["variant"], r["stage"], str(r["batch"]), *figures)
    console.print(table)
    v = result.get("validate")
    if v:
        console.print(
            f"validate ({v['backend']}, {v['candidates_per_frame']} candidates per frame): "
            f"{v['ms_per_candidate']:.0f} ms/candidate, {v['frames_per_s']} frames/s, "
            f"{v['tokens_per_candidate']} tokens/candidate at {v['tokens_per_s']} tokens/s",
            highlight=False,
        )
    else:
        console.print("validate: not timed (the 4B-class VLM is timed on CUDA, or with --vlm)", highlight=False)
    for name, overrides in result["variants"].items():
        if overrides:
            console.print(f"{name}: {', '.join(f'{k}={v}' for k, v in overrides.items())}", highlight=False)
    for p in result["pipeline"]:
        line = f"detect + ground + segment at batch {p['batch']}: {p['pipeline_frames_per_s']} frames/s"
        if "variant" in p:
            line = f"{p['variant']}: {line} ({p['speedup']}x)"
        if "with_validate_frames_per_s" in p:
            line += f"; with validate {p['with_validate_frames_per_s']} frames/s"
        console.print(line, highlight=False)
    console.print(f"architectures: {', '.join(result['architectures'].values())}", highlight=False)


@bench_app.command("segment")
def bench_segment_cmd(
    sizes: Annotated[str, typer.Option(help="Comma-separated part sizes (long axis, pixels) in a 1080p frame.")] = (
        "8,12,16,24,32,40"
    ),
    frames: Annotated[int, typer.Option(min=1, help="Frames per size (3 dogs with two eyes each).")] = 4,
    seed: Annotated[int, typer.Option(help="Scene seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Polygon IoU with the truth of crop versus full-frame segmentation, through an oracle at SAM2's resolution."""
    import json

    from rich.table import Table

    from streamlabel.bench.segment import bench_segment

    try:
        sizes_px = tuple(float(s) for s in sizes.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"sizes must be numbers (got {sizes!r})", param_hint="--sizes") from None
    if not sizes_px or min(sizes_px) <= 0:
        raise typer.BadParameter("give at least one size > 0", param_hint="--sizes")
    result = bench_segment(sizes_px, frames=frames, seed=seed)
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"polygon IoU with the truth, {result['frame']} frame, SAM2 input {result['sam2_image_size']}")
    for col in ("size px", "parts", "ideal", "full", "full min", "full lost", "crop", "crop min", "crop lost"):
        table.add_column(col, justify="right")
    for r in result["sizes"]:
        figures = [r["ideal_iou"], r["full_iou"], r["full_iou_min"], r["full_dropped"]]
        figures += [r["crop_iou"], r["crop_iou_min"], r["crop_dropped"]]
        table.add_row(f"{r['size_px']:g}", str(r["parts"]), *(str(f) for f in figures))
    console.print(table)


@bench_app.command("quality")
def bench_quality_cmd(
    seeds: Annotated[int, typer.Option(min=1, max=256, help="Sequences (seed 0..N-1; 1, 2, 3 dogs in turn).")] = 3,
    frames: Annotated[int, typer.Option(min=1, max=65536, help="Sampled frames per sequence (2 fps).")] = 60,
    reuse_s: Annotated[
        float | None, typer.Option(min=0, help="tracking.revalidate_s of the reuse variant (default: the config's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Label precision and recall of the real Labeler and store on scripted sequences with known truth."""
    import json

    from streamlabel.bench.quality import bench_quality, default_variants

    with console.status("labeling synthetic sequences …") as status:
        result = bench_quality(seeds, frames, variants=default_variants(reuse_s), progress=status.update)
    if as_json:
        print(json.dumps(result))
        return
    _print_quality(result)


def _print_quality(result: dict) -> None:
    from rich.table import Table

    from streamlabel.bench.quality import FIGURES

    title = f"label quality: {result['seeds']} sequences x {result['frames']} frames, mean ± std over the sequences"
    table = Table(title=title)
    table.add_column("figure")
    for v in result["variants"]:
        table.add_column(v["name"], justify="right")
    for name in (*FIGURES, "ms_per_frame"):
        cells = []
        for v in result["variants"]:
            s = v["figures"][name]
            cells.append("–" if s["mean"] is None else f"{s['mean']:.4g} ± {s['std']:.2g}")
        table.add_row(name, *cells)
    for name in ("precision", "recall_passed", "recall_good"):
        pooled = [v["figures"]["pooled"][name] for v in result["variants"]]
        table.add_row(f"pooled {name}", *("–" if p is None else f"{p:.4g}" for p in pooled))
    console.print(table)
    goals = result["goals"]
    console.print(
        f"goals: precision >= {goals['precision']}, recall_passed >= {goals['recall_passed']}; {result['seconds']} s",
        highlight=False,
    )


@bench_app.command("static")
def bench_static_cmd(
    seeds: Annotated[int, typer.Option(min=1, max=256, help="Static sequences (seed 0..N-1).")] = 3,
    minutes: Annotated[float, typer.Option(min=0.1, help="Length of each sequence (2 fps).")] = 10.0,
    daily_budget: Annotated[
        int, typer.Option(min=0, help="store.daily_budget of a third run (gate + budget, a sequence = a day); 0: none.")
    ] = 40,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The novelty gate off and on (and with a daily budget) over a resting dog with bursts, day and night."""
    import json

    from rich.table import Table

    from streamlabel.bench.quality_static import bench_static

    with console.status("labeling static sequences …") as status:
        result = bench_static(seeds, minutes, daily_budget=daily_budget or None, progress=status.update)
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"static scene: {seeds} sequences x {minutes:g} min, totals")
    runs = [result["gate_off"], result["gate_on"]] + ([result["budget"]] if "budget" in result else [])
    for col in ("figure", "gate off", "gate on", f"gate + budget {daily_budget}/day")[: len(runs) + 1]:
        table.add_column(col, justify="left" if col == "figure" else "right")
    figures = ("validator_calls", "stored_frames", "stored_day", "stored_night", "dataset_frames", "moments_kept")
    for name in ("frames", *figures, "moments", "precision"):
        table.add_row(name, *(str(run[name]) for run in runs))
    console.print(table)
    if "budget" in result:
        budget = result["budget"]
        console.print(
            f"budget: {budget['refused']} frames refused; day and night both kept in every sequence: "
            f"{budget['both_represented']}; every sequence within its budget: {budget['within_budget']}",
            highlight=False,
        )
    console.print(
        f"fewer stored {result['fewer_stored']:.1%}, fewer validator calls {result['fewer_validator_calls']:.1%}, "
        f"moments kept {result['moments_kept_share']:.1%}; goals met: {result['goals_met']}",
        highlight=False,
    )
