"""``streamlabel run`` (the daemon) and ``streamlabel status`` (ask the running daemon how it is)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    ConfigOpt,
    app,
    build,
    console,
    load_or_exit,
    streams_from_sources,
)

EXIT_NOT_RUNNING = 1


def metrics_address_of(config: Path) -> str | None:
    """``daemon.metrics_address`` of a config file, read without resolving ``${NAME}`` secrets (``status`` runs
    without the service's credentials); the default when the file or the key is absent."""
    import yaml

    from streamlabel.config import DaemonConfig

    default = DaemonConfig().metrics_address
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return default
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]cannot read {config}: {exc}[/]")
        raise typer.Exit(EXIT_CONFIG) from None
    daemon = data.get("daemon") if isinstance(data, dict) else None
    return daemon.get("metrics_address", default) if isinstance(daemon, dict) else default


@app.command()
def run(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    source: Annotated[list[str] | None, typer.Option(help="Add a source (file, URL or device).")] = None,
) -> None:
    """Run the daemon on every configured stream until SIGINT or SIGTERM; SIGHUP reloads the config.

    When every stream is a file (no camera, no looped file) it ends once they are read, and a file already in the
    store resumes after its last stored frame.
    """
    from streamlabel.daemon.logs import setup_service_logging, under_journald
    from streamlabel.daemon.service import Daemon
    from streamlabel.report import print_summary

    cfg = load_or_exit(config)
    setup_service_logging(cfg.daemon.log_level)
    extra = {}
    if source:
        template = next(iter(cfg.streams.values()), None)
        extra = streams_from_sources(source, template)
        cfg = cfg.model_copy(update={"streams": {**cfg.streams, **extra}})
    if not any(s.enabled for s in cfg.streams.values()):
        console.print("[red]no streams: add one under 'streams:' in the config or pass --source[/]")
        raise typer.Exit(EXIT_CONFIG)
    stages, store = build(cfg)
    try:
        daemon = Daemon(cfg, config, stages, store, extra_streams=extra)
    except OSError as exc:
        store.close()
        console.print(f"[red]cannot listen on daemon.metrics_address {cfg.daemon.metrics_address}: {exc.strerror}[/]")
        raise typer.Exit(EXIT_CONFIG) from None
    daemon.install_signals()
    code = daemon.run()
    if not under_journald():  # the journal gets the one-line "stopped:" record instead of a table
        print_summary(daemon.stats, daemon.runner.labeler.times, store.root, console)
    _exit_past_busy_threads(code)
    raise typer.Exit(code)


def _exit_past_busy_threads(code: int) -> None:
    """End the process at once when a thread the stop gave up on is still alive (a batch or a pending retry inside
    torch or FFmpeg after the stop timeout): interpreter finalization under such a thread can abort the process
    (SIGABRT, "terminate called without an active exception") and turn a clean exit 0 into a crash. Everything
    the daemon owes is done by now: the store is closed and the outbox drained or left for the next start."""
    import logging
    import os
    import sys
    import threading

    busy = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if not busy:
        return
    logging.getLogger(__name__).debug("exiting past busy threads: %s", ", ".join(busy))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


@app.command()
def status(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    address: Annotated[
        str | None, typer.Option(help="HOST:PORT of the daemon's metrics endpoint (default: daemon.metrics_address).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON state.")] = False,
) -> None:
    """Show the running daemon's streams, throughput, validation outcomes and outbox as a table."""
    from streamlabel.daemon.status import StatusUnavailableError, fetch_status
    from streamlabel.report import print_status

    if address is None:
        address = metrics_address_of(config)
        if not address:
            console.print(f"[red]daemon.metrics_address is off in {config}: the status needs that endpoint[/]")
            raise typer.Exit(EXIT_CONFIG)
    try:
        state = fetch_status(address)
    except StatusUnavailableError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_NOT_RUNNING) from None
    if as_json:
        import json

        print(json.dumps(state, indent=2))
        return
    print_status(state, Console())
