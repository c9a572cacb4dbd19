"""``streamlabel models``: fetch the configured weights."""

from __future__ import annotations

from pathlib import Path

import typer

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    EXIT_MODEL,
    ConfigOpt,
    console,
    load_or_exit,
    models_app,
    setup_logging,
)


@models_app.command("pull")
def models_pull(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Fetch every configured weight (Ultralytics, Hugging Face, `ollama pull`) so the daemon starts offline."""
    from streamlabel.models import pull_all

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    failures = pull_all(cfg, console)
    raise typer.Exit(1 if failures else 0)


@models_app.command("check")
def models_check(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """List every configured model and whether it is on this machine (or its server); exit 3 if any is missing."""
    from rich.table import Table

    from streamlabel.models_check import check_all

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    rows = check_all(cfg)
    table = Table(title=f"models of {config}")
    for column in ("stage", "model", "status", "where"):
        table.add_column(column)
    for row in rows:
        status = "[green]found[/]" if row.found else "[red]missing[/]"
        table.add_row(row.stage, row.model, status, row.where if row.found else "see below")
    console.print(table)
    missing = [row for row in rows if not row.found]
    for row in missing:  # unwrapped, so that the commands in the fix can be copied
        console.print(f"{row.stage}: {row.model}: {row.where}", soft_wrap=True, highlight=False, markup=False)
    if missing:
        names = ", ".join(row.stage for row in missing)
        console.print(f"[red]{len(missing)} of {len(rows)} models missing: {names}[/]")
    raise typer.Exit(EXIT_MODEL if missing else 0)
