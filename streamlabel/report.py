"""Progress bar and end-of-run summary for ``streamlabel label`` and ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner, RunStats
from streamlabel.events import EventSink, open_sink
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


def label_with_progress(
    cfg: Config, stages: Stages, store: DatasetStore, console: Console, sink: EventSink | None = None
) -> RunStats:
    """Label every stream of ``cfg`` to its end with a progress bar, deliver its events, then print the summary.

    Without ``sink`` the run opens its own (MQTT when configured, else ``events.jsonl``) and stops it after
    delivering what it can; a caller's ``sink`` is woken by the run and left running.
    """
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

        own_sink = sink is None
        if sink is None:
            sink = open_sink(cfg, store.manifest)
            sink.start()
        runner = Runner(cfg, stages, store, on_result=on_result, sink=sink)
        try:
            stats = runner.run_until_done()
        except KeyboardInterrupt:
            runner.stop()
            runner.clips_closed = runner.clips.close(cfg.daemon.stop_timeout_s)  # a clip may be being written
            stats = runner.stats
        finally:
            events = deliver_events(cfg, sink, store) if own_sink else None
            if runner.clips_closed:  # else a clip thread still writes: the store stays open until the process ends
                store.close()
        progress.update(task, total=stats.frames, completed=stats.frames)
    print_summary(stats, runner.labeler.times, store.root, console, events)
    return stats


def events_target(cfg: Config, root: Path) -> str:
    """Where the run's events go, in words: the MQTT broker or the events.jsonl file."""
    if cfg.mqtt is not None:
        return f"MQTT {cfg.mqtt.host}:{cfg.mqtt.port}"
    return str(root / "events.jsonl")


def deliver_events(cfg: Config, sink: EventSink, store: DatasetStore) -> str:
    """Stop ``sink`` after it delivered what it can within ``daemon.stop_timeout_s``; say where they went.

    Events it could not deliver (the broker is down) stay in the outbox and leave with the next run or daemon.
    """
    sink.stop(cfg.daemon.stop_timeout_s)
    left = store.manifest.outbox_depth()
    text = f"{getattr(sink, 'delivered', 0)} delivered to {events_target(cfg, store.root)}"
    return text + (f"; {left} kept in the outbox for the next run" if left else "")


def print_summary(stats: RunStats, times: object, root: Path, console: Console, events: str | None = None) -> None:
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
    if events is not None:
        table.add_row("events", events)
    table.add_row("store", str(root))
    console.print(table)


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


STATUS_STYLE = {"online": "green", "reconnecting": "yellow", "starting": "yellow", "offline": "red", "finished": "blue"}


def print_status(state: dict[str, Any], console: Console) -> None:
    """The running daemon's state (``streamlabel status``): health, streams, stages, labels, outbox."""
    health = "[green]healthy[/]" if state.get("healthy") else "[red]unhealthy[/]"
    head = Table(title=f"streamlabel {state.get('version', '')} (pid {state.get('pid')})", show_header=False)
    head.add_row("health", f"{health}  (labeler ticked {state.get('tick_age_s', 0):.1f} s ago)")
    if state.get("stopping"):
        head.add_row("state", "[yellow]stopping[/]")
    head.add_row("uptime", f"{state.get('uptime_s', 0):.0f} s")
    head.add_row("config", str(state.get("config")))
    head.add_row("store", f"{state.get('store')}  ({_size(state.get('store_bytes'))})")
    head.add_row("frames labeled / stored", f"{state.get('frames_labeled', 0)} / {state.get('frames_stored', 0)}")
    labels = state.get("labels", {})
    head.add_row("labels", "  ".join(f"{k} {labels.get(k, 0)}" for k in ("accepted", "review", "rejected", "pending")))
    for name, c in sorted(state.get("sift", {}).items()):
        head.add_row(
            f"gate / budget {name}",
            f"parts kept {c['gate_kept']}, near-copies {c['gate_dropped']} ({c['gate_frames_dropped']} frames); "
            f"budget kept {c['budget_kept']}, refused {c['budget_refused']}",
        )
    sink = "connected" if state.get("sink_connected") else "[red]not connected[/]"
    head.add_row("events", f"outbox depth {state.get('outbox_depth', '-')}, sink {sink}")
    reloads = state.get("reloads", {})
    head.add_row("reloads", f"applied {reloads.get('applied', 0)}, rejected {reloads.get('rejected', 0)}")
    if state.get("needs_restart"):
        head.add_row("restart needed for", f"[yellow]{', '.join(state['needs_restart'])}[/]")
    console.print(head)

    streams = Table(title="streams")
    for col in ("stream", "status", "fps", "sampled", "dropped", "reconnects", "restarts", "source"):
        streams.add_column(col, justify="right" if col not in ("stream", "status", "source") else "left")
    for name, s in sorted(state.get("streams", {}).items()):
        st = s.get("status", "?")
        detail = f" ({s['detail']})" if s.get("detail") else ""
        streams.add_row(
            name,
            f"[{STATUS_STYLE.get(st, 'white')}]{st}[/]{detail}",
            f"{s.get('fps', 0):.2f}",
            str(s.get("sampled", 0)),
            str(s.get("dropped", 0)),
            str(s.get("reconnects", 0)),
            str(s.get("restarts", 0)),
            str(s.get("url", "")),
        )
    console.print(streams)
    if state.get("cluster"):  # the Ray engine's actors and nodes (docs/cluster.md)
        from streamlabel.cluster.status import print_cluster

        print_cluster(state, console)

    if state.get("stages"):
        stages = Table(title="stages")
        for col in ("stage", "items", "ms/item"):
            stages.add_column(col, justify="left" if col == "stage" else "right")
        for stage, t in state["stages"].items():
            n = t.get("items", 0)
            stages.add_row(stage, str(n), f"{1000 * t['seconds'] / n:.1f}" if n else "-")
        console.print(stages)
