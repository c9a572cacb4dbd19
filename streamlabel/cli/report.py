"""``streamlabel report dataset``: figures and plots of what the store holds (docs/store.md, "Dataset report")."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from streamlabel.cli.common import DEFAULT_CONFIG, ConfigOpt, app, console, load_or_exit, setup_logging

EXIT_STORE = 1
REPORT_FILE = "report.json"

report_app = typer.Typer(help="Reports on the store.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("dataset")
def dataset(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and the PNG plots (created).")],
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    per_day: Annotated[int, typer.Option("--per-day", min=1, help="Images analysed per stream and day at most.")] = (
        2000
    ),
    max_bits: Annotated[
        int, typer.Option("--max-bits", min=0, max=16, help="dHash bits near-duplicates may differ in (of 64).")
    ] = 4,
    cache: Annotated[bool, typer.Option(help="Reuse and update <store>/report-cache.json.")] = True,
) -> None:
    """Frames and labels per stream, day, light and track; near-duplicates; queues; label sizes; plots."""
    from streamlabel.store.report import build_report
    from streamlabel.store.report_plots import write_plots

    cfg = load_or_exit(config)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON only (libraries print at import)
        setup_logging("WARNING")
        try:
            report = build_report(
                Path(cfg.store.path),
                infrared_max_saturation=cfg.store.infrared_max_saturation,
                max_bits=max_bits,
                per_day=per_day,
                cache=cache,
            )
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/]", highlight=False)
            raise typer.Exit(EXIT_STORE) from None
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, indent=2, sort_keys=True)
        (out / REPORT_FILE).write_text(text + "\n")
        plots = write_plots(report, out)
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        console.print(_summary(report))
    console.print(f"wrote {out / REPORT_FILE} and {len(plots)} plots to {out}", highlight=False)


def _summary(report: dict[str, Any]) -> Table:
    """One row per stream: frames per split, labels per status, distinct frames, night share, queues."""
    table = Table(title=f"store {report['store']}")
    for column in ("stream", "frames", "dataset", "review", "pending", "accepted", "distinct", "night", "tracks"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for stream, figures in report["streams"].items():
        frames, labels = figures["frames"], figures["labels"]
        light = report["day_night"].get(stream, {})
        analysed = light.get("day", 0) + light.get("night", 0)
        night = f"{light.get('night', 0) / analysed:.0%}" if analysed else "-"
        table.add_row(
            stream,
            str(sum(v for k, v in frames.items() if "_beside_" not in k)),
            str(frames.get("dataset", 0)),
            str(frames.get("review", 0) + frames.get("review_beside_dataset", 0)),
            str(frames.get("pending", 0) + frames.get("pending_beside_dataset", 0)),
            str(labels.get("accepted", 0)),
            str(figures.get("distinct_frames", 0)),
            night,
            str(report["tracks"].get(stream, {}).get("tracks", 0)),
        )
    return table
