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


@report_app.command("calibration")
def calibration_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for calibration.json and reliability.png.")],
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    target_precision: Annotated[
        float, typer.Option("--target-precision", min=0.5, max=1.0, help="Precision the suggested threshold meets.")
    ] = 0.99,
) -> None:
    """The validator measured on audit items: precision, recall, reliability diagram, threshold (docs/review.md)."""
    from streamlabel.store.audit import Audits
    from streamlabel.store.calibration import calibration, plot_reliability
    from streamlabel.store.manifest import Manifest
    from streamlabel.store.reviews import SCHEMA as REVIEWS_SCHEMA

    cfg = load_or_exit(config)
    root = Path(cfg.store.path)
    if not (root / "manifest.sqlite").is_file():
        console.print(f"[red]{root} holds no store (no manifest.sqlite); set store.path in {config}[/]")
        raise typer.Exit(EXIT_STORE)
    with contextlib.redirect_stdout(sys.stderr):
        setup_logging("WARNING")
        manifest = Manifest(root / "manifest.sqlite")
        try:
            with manifest.transaction() as db:  # an old store may have no reviews table yet
                for stmt in filter(str.strip, REVIEWS_SCHEMA.split(";")):
                    db.execute(stmt)
            audits = Audits(manifest, root, cfg.review.audit_fraction, cfg.store.infrared_max_saturation)
            if audits.fraction > 0:  # every frame not considered yet (the daemon's housekeeping does it in batches)
                audits.select()
            report = calibration(audits, target_precision)
        finally:
            manifest.close()
        text = json.dumps(report, indent=2, sort_keys=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(text + "\n")
        plot = plot_reliability(report, out)
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        console.print(_calibration_summary(report), highlight=False)
    console.print(f"wrote {out / 'calibration.json'} and {plot}", highlight=False)


def _calibration_summary(report: dict[str, Any]) -> str:
    """Precision, recall, dataset precision and threshold of the audit, in a few lines."""

    def ci(p: dict[str, Any] | None) -> str:
        if not p or p.get("value") is None:
            return "no data yet"
        low, high = p["interval"]
        counts = f"{p['successes']}/{p['trials']}, " if "successes" in p else ""
        return f"{p['value']:.1%} ({counts}95% {low:.1%}-{high:.1%})"

    audit, threshold = report["audit"], report["audit"]["threshold"]
    at = "none meets it" if threshold["threshold"] is None else f"{threshold['threshold']:.3f}"
    return "\n".join(
        [
            f"audited parts: {audit['parts']} (audit_fraction {report['audit_fraction']})",
            f"precision of automatic acceptance: {ci(audit['precision'])}",
            f"recall of automatic acceptance: {ci(audit['recall'])}",
            f"dataset precision: {ci(audit['dataset_precision'])}",
            f"threshold for {threshold['target']:.1%} precision: {at}",
            f"review items decided (biased sample): {report['review_items']['parts']}",
            f"student finds decided: {report['student_finds']['decided']}, accepted (missed by the pipeline): "
            f"{ci(report['student_finds']['accepted_by_people'])}",
        ]
    )
