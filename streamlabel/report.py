"""Progress bar and end-of-run summary for ``streamlabel label`` and ``run``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner, RunStats
from streamlabel.pipeline import Stages
from streamlabel.store import DatasetStore
from streamlabel.streams.source import SourceError, is_live, open_container


def expected_frames(cfg: Config) -> int | None:
    """Sampled frames the file streams will give (from their durations), or None when unknown or live."""
    total = 0.0
    for s in cfg.streams.values():
        if is_live(s.url) or s.loop:
            return None
        try:
            container = open_container(s.url, s)
        except SourceError:
            continue
        with container:
            video = container.streams.video[0]
            seconds = (
                float(video.duration * video.time_base)
                if video.duration
                else (container.duration / 1e6 if container.duration else 0.0)
            )
        total += seconds * s.fps
    return round(total) or None


def label_with_progress(cfg: Config, stages: Stages, store: DatasetStore, console: Console) -> RunStats:
    """Label every stream of ``cfg`` to its end with a progress bar, then print the summary."""
    total = expected_frames(cfg)
    with Progress(
        TextColumn("[bold]labeling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("label", total=total, info="")
        runner: Runner

        def on_result(result: object, stored: object) -> None:
            s = runner.stats
            progress.update(
                task, completed=s.frames, info=f"anchors {s.anchors}  parts {s.parts}  accepted {s.labels['accepted']}"
            )

        runner = Runner(cfg, stages, store, on_result=on_result)
        try:
            stats = runner.run_until_done()
        except KeyboardInterrupt:
            runner.stop()
            stats = runner.stats
        finally:
            store.close()
        progress.update(task, total=stats.frames, completed=stats.frames)
    print_summary(stats, runner.labeler.times, store.root, console)
    return stats


def print_summary(stats: RunStats, times: object, root: Path, console: Console) -> None:
    """The end-of-run table: what was found, where it went, and how fast each stage was."""
    table = Table(title="streamlabel summary", show_header=False)
    table.add_row("frames labeled", str(stats.frames))
    table.add_row("anchors / parts", f"{stats.anchors} / {stats.parts}")
    for status in ("accepted", "review", "rejected", "pending"):
        table.add_row(f"labels {status}", str(stats.labels.get(status, 0)))
    table.add_row("frames stored", ", ".join(f"{k} {v}" for k, v in sorted(stats.stored.items())) or "none")
    fps = stats.frames / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    table.add_row("throughput", f"{fps:.2f} frames/s over {stats.elapsed_s:.1f} s")
    for stage, seconds in getattr(times, "seconds", {}).items():
        n = times.items.get(stage, 0)  # type: ignore[attr-defined]
        per = f"{1000 * seconds / n:.1f} ms/item over {n}" if n else "-"
        table.add_row(f"stage {stage}", per)
    for name, error in stats.ended.items():
        if error:
            table.add_row(f"stream {name}", f"[red]ended with an error: {error}[/]")
    table.add_row("store", str(root))
    console.print(table)
