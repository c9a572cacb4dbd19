"""``streamlabel run``: the daemon."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    ConfigOpt,
    app,
    build,
    console,
    load_or_exit,
    log,
    setup_logging,
    streams_from_sources,
)


@app.command()
def run(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    source: Annotated[list[str] | None, typer.Option(help="Add a source (file, URL or device).")] = None,
) -> None:
    """Run the pipeline on every configured stream until SIGINT or SIGTERM."""
    from streamlabel.daemon import Runner
    from streamlabel.report import print_summary

    cfg = load_or_exit(config)
    setup_logging(cfg.daemon.log_level)
    if source:
        template = next(iter(cfg.streams.values()), None)
        cfg = cfg.model_copy(update={"streams": {**cfg.streams, **streams_from_sources(source, template)}})
    if not any(s.enabled for s in cfg.streams.values()):
        console.print("[red]no streams: add one under 'streams:' in the config or pass --source[/]")
        raise typer.Exit(EXIT_CONFIG)
    stages, store = build(cfg)
    runner = Runner(cfg, stages, store)

    def _stop(signum: int, _frame: object) -> None:
        log.info("received %s: finishing frames in flight", signal.Signals(signum).name)
        runner.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    log.info("running %d stream(s); store %s", len(runner.readers), store.root)
    stats = runner.run_until_done()
    store.close()
    print_summary(stats, runner.labeler.times, store.root, console)
