"""``streamlabel models``: fetch the configured weights."""

from __future__ import annotations

from pathlib import Path

import typer

from streamlabel.cli.common import DEFAULT_CONFIG, ConfigOpt, console, load_or_exit, models_app, setup_logging


@models_app.command("pull")
def models_pull(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Fetch every configured weight (Ultralytics, Hugging Face, `ollama pull`) so the daemon starts offline."""
    from streamlabel.models import pull_all

    cfg = load_or_exit(config)
    setup_logging("WARNING")
    failures = pull_all(cfg, console)
    raise typer.Exit(1 if failures else 0)
