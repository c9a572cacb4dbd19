"""What every command shares: the typer apps, the console, logging, config loading and building the stages."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from streamlabel.config import Config, ConfigError, StreamConfig, load
from streamlabel.stages.base import ModelUnavailableError

if TYPE_CHECKING:
    from streamlabel.pipeline import Stages
    from streamlabel.store import DatasetStore

app = typer.Typer(
    help="Turn pet-camera video into labeled training data.", no_args_is_help=True, pretty_exceptions_enable=False
)
models_app = typer.Typer(help="Fetch and inspect the configured model weights.", no_args_is_help=True)
app.add_typer(models_app, name="models")
bench_app = typer.Typer(help="Benchmarks that print figures measured in one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)
log = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/streamlabel.yml"
EXIT_CONFIG = 2
EXIT_MODEL = 3

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")]


def setup_logging(level: str) -> None:
    """One line per event, no colours: journald and log files read it as is."""
    from streamlabel.daemon.logs import StderrHandler, quiet_libraries

    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, force=True, handlers=[handler])

    quiet_libraries(level)


def load_or_exit(path: Path) -> Config:
    """Load the config or exit 2 after printing every problem as ``FILE:LINE: key: message``."""
    try:
        return load(path)
    except ConfigError as err:
        console.print(f"[red]invalid config {err.source}[/]")
        for issue in err.issues:
            where = f"{err.source}:{issue.line}" if issue.line else err.source
            print(f"  {where}: {issue.path or '<top>'}: {issue.message}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None


def stream_name(source: str, taken: set[str]) -> str:
    """A stream name for a source given on the command line (``name=url`` or a path/URL)."""
    base = Path(source.split("?")[0].rstrip("/")).stem or "stream"
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_-")[:60] or "stream"
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    return candidate


def streams_from_sources(
    sources: list[str], template: StreamConfig | None = None, fps: float | None = None
) -> dict[str, StreamConfig]:
    """Turn ``name=url`` or bare sources into stream configs (fps from ``fps`` or the template)."""
    out: dict[str, StreamConfig] = {}
    for src in sources:
        name, sep, url = src.partition("=")
        if not sep or "://" in name or "/" in name:
            name, url = stream_name(src, set(out)), src
        base = template.model_dump() if template else {}
        base.update(url=url)
        if fps:
            base.update(fps=fps)
        out[name] = StreamConfig(**base)
    return out


def build(cfg: Config, out: Path | None = None) -> tuple[Stages, DatasetStore]:
    """Load every stage (exit 3 when a model is missing) and open the store."""
    from streamlabel.pipeline import Stages
    from streamlabel.stages.base import Runtime
    from streamlabel.store import DatasetStore

    runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype, cfg.models.compile)
    compiled = "" if runtime.compile == "off" else f", torch.compile {runtime.compile}: the first batches compile"
    console.print(f"loading models on {runtime.device} ({runtime.dtype}{compiled})…")
    try:
        stages = Stages.build(cfg, runtime)
    except ModelUnavailableError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_MODEL) from None
    root = out or Path(cfg.store.path)
    store = DatasetStore.from_config(cfg, root)
    return stages, store
