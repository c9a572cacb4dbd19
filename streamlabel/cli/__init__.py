"""The ``streamlabel`` command line (typer). One module per command group; importing them registers the commands."""

from __future__ import annotations

from streamlabel.cli import (  # noqa: F401  (registers the commands)
    bench,
    bench_cluster,
    bench_soak,
    bench_store,
    bench_student,
    bench_tracking,
    bench_train_share,
    daemon,
    labeling,
    models,
    report,
    review,
    store,
    train,
)
from streamlabel.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
