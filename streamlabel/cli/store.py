"""Commands that read the store: export, harvest, prune."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streamlabel.cli.common import DEFAULT_CONFIG, ConfigOpt, app, console, load_or_exit, setup_logging

T = TypeVar("T")
EXIT_STORE = 1

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder to write (created).")]
StreamOpt = Annotated[str | None, typer.Option("--stream", help="Only this stream.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this ISO 8601 date/time (naive means UTC).")]


def _progress(label: str) -> tuple[Progress, object]:
    progress = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    )

    def wrap(items: Iterable[T], total: int) -> Iterable[T]:
        yield from progress.track(items, total=total)

    return progress, wrap


@app.command()
def export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="coco (instance segmentation JSON), yolo (YOLO-seg), label-studio or cvat."
        ),
    ],
    out: OutOpt,
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    stream: StreamOpt = None,
    since: SinceOpt = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this ISO 8601 date/time (naive: UTC).")] = None,
    include_review: Annotated[bool, typer.Option(help="Also export frames and labels waiting for review.")] = False,
) -> None:
    """Export the accepted labels of the store (store.path) as COCO JSON or a YOLO-seg folder."""
    from streamlabel.store.export import ExportError, Selection, export_store, parse_time

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    try:
        selection = Selection(
            stream,
            parse_time(since) if since else None,
            parse_time(until) if until else None,
            include_review,
        )
        progress, wrap = _progress(f"export {fmt}")
        with progress:
            report = export_store(Path(cfg.store.path), fmt.lower(), out, selection, wrap)
    except ExportError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_STORE) from None
    if report.frames == 0:
        console.print("[yellow]nothing selected: wrote an empty export[/]", highlight=False)
    console.print(report.summary(), highlight=False)


@app.command()
def harvest(
    out: OutOpt,
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    stream: StreamOpt = None,
    since: SinceOpt = None,
    min_labels: Annotated[int, typer.Option("--min-labels", help="Only clips with at least this many labels.")] = 1,
) -> None:
    """Copy clips, their sidecars and their labeled frames into a folder a training job can take as is."""
    from streamlabel.store.export import ExportError, parse_time
    from streamlabel.store.harvest import harvest_clips

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    try:
        progress, wrap = _progress("harvest")
        with progress:
            report = harvest_clips(
                Path(cfg.store.path), out, stream, parse_time(since) if since else None, min_labels, wrap
            )
    except ExportError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_STORE) from None
    if report.clips == 0:
        console.print("[yellow]no clip matched: wrote an empty harvest[/]", highlight=False)
    console.print(report.summary(), highlight=False)


@app.command()
def prune(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Apply store.max_gb and store.max_age_days now (safe while the daemon runs); prints what went."""
    from streamlabel.store.manifest import Manifest
    from streamlabel.store.retention import StoreHandle
    from streamlabel.store.retention import prune as prune_store

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    root = Path(cfg.store.path)
    if not (root / "manifest.sqlite").is_file():
        console.print(f"[red]no store at {root} (manifest.sqlite expected)[/]", highlight=False)
        raise typer.Exit(EXIT_STORE)
    if cfg.store.max_gb is None and cfg.store.max_age_days is None and cfg.store.review_max_age_days is None:
        console.print(
            "[yellow]store.max_gb, store.max_age_days and store.review_max_age_days are unset: nothing to prune[/]",
            highlight=False,
        )
    manifest = Manifest(root / "manifest.sqlite")
    try:
        report = prune_store(StoreHandle(root, manifest), cfg)
    finally:
        manifest.close()
    console.print(report.summary(), highlight=False)
    if report.over_limit:
        console.print("[yellow]still over store.max_gb: the rest is pending or waits for event delivery[/]")
