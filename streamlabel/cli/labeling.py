"""Commands that label: check, label, selftest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    ConfigOpt,
    app,
    build,
    console,
    load_or_exit,
    setup_logging,
    streams_from_sources,
)


@app.command()
def check(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Validate a config file: exit 0 when it is good, 2 with the key, line and problem when it is not."""
    cfg = load_or_exit(config)
    t = cfg.target
    v = cfg.models.validate_
    judged = (
        f"validation {v.kind}:{v.model} ({len(t.validation.checks)} checks)"
        if t.validation.enabled
        else ("validation off")
    )
    console.print(
        f"[green]config OK[/] {config}: {len(cfg.streams)} stream(s), anchor {', '.join(t.anchor.classes)}, "
        f"part {t.part.prompt!r}, {judged}",
        highlight=False,
    )


@app.command()
def label(
    sources: Annotated[list[str], typer.Argument(help="Files or URLs; 'name=url' names the stream.")],
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Store folder (default: store.path).")] = None,
    fps: Annotated[float | None, typer.Option(help="Sampling rate (default: the config's first stream, or 2).")] = None,
) -> None:
    """Label sources to their end and write the dataset store; prints a summary."""
    from streamlabel.report import label_with_progress

    cfg = load_or_exit(config)
    setup_logging(cfg.daemon.log_level if cfg.daemon.log_level != "INFO" else "WARNING")
    template = next(iter(cfg.streams.values()), None)
    cfg = cfg.model_copy(update={"streams": streams_from_sources(sources, template, fps)})
    stages, store = build(cfg, out)
    label_with_progress(cfg, stages, store, console)


@app.command()
def selftest(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Keep everything written here.")] = None,
    mqtt: Annotated[
        str | None,
        typer.Option("--mqtt", metavar="HOST:PORT", help="Publish the run's events to this MQTT broker."),
    ] = None,
) -> None:
    """Label a synthetic clip with tiny random-weight models through the real backends (no network needed)."""
    from streamlabel.selftest import parse_broker, run_selftest

    setup_logging("WARNING")
    try:
        broker = parse_broker(mqtt) if mqtt else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mqtt") from None
    ok = run_selftest(out, console, broker)
    raise typer.Exit(0 if ok else 1)
