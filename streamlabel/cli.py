"""The ``streamlabel`` command line (typer): run, label, check, selftest, models."""

from __future__ import annotations

import logging
import re
import signal
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
    logging.basicConfig(
        level=level, stream=sys.stderr, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load_or_exit(path: Path) -> Config:
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


def _build(cfg: Config, out: Path | None = None) -> tuple[Stages, DatasetStore]:
    from streamlabel.pipeline import Stages
    from streamlabel.stages.base import Runtime
    from streamlabel.store import DatasetStore

    runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype)
    console.print(f"loading models on {runtime.device} ({runtime.dtype})…")
    try:
        stages = Stages.build(cfg, runtime)
    except ModelUnavailableError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_MODEL) from None
    root = out or Path(cfg.store.path)
    store = DatasetStore(root, [cfg.target.part.class_name], cfg.store.jpeg_quality, cfg.store.keep_rejected)
    return stages, store


@app.command()
def check(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Validate a config file: exit 0 when it is good, 2 with the key, line and problem when it is not."""
    cfg = _load_or_exit(config)
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

    cfg = _load_or_exit(config)
    setup_logging(cfg.daemon.log_level if cfg.daemon.log_level != "INFO" else "WARNING")
    template = next(iter(cfg.streams.values()), None)
    cfg = cfg.model_copy(update={"streams": streams_from_sources(sources, template, fps)})
    stages, store = _build(cfg, out)
    label_with_progress(cfg, stages, store, console)


@app.command()
def run(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    source: Annotated[list[str] | None, typer.Option(help="Add a source (file, URL or device).")] = None,
) -> None:
    """Run the pipeline on every configured stream until SIGINT or SIGTERM."""
    from streamlabel.daemon import Runner
    from streamlabel.report import print_summary

    cfg = _load_or_exit(config)
    setup_logging(cfg.daemon.log_level)
    if source:
        template = next(iter(cfg.streams.values()), None)
        cfg = cfg.model_copy(update={"streams": {**cfg.streams, **streams_from_sources(source, template)}})
    if not any(s.enabled for s in cfg.streams.values()):
        console.print("[red]no streams: add one under 'streams:' in the config or pass --source[/]")
        raise typer.Exit(EXIT_CONFIG)
    stages, store = _build(cfg)
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


@app.command()
def selftest(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Keep everything written here.")] = None,
) -> None:
    """Label a synthetic clip with tiny random-weight models through the real backends (no network needed)."""
    from streamlabel.selftest import run_selftest

    setup_logging("WARNING")
    ok = run_selftest(out, console)
    raise typer.Exit(0 if ok else 1)


@bench_app.command("ingest")
def bench_ingest_cmd(
    file: Annotated[Path | None, typer.Argument(help="Video file (default: a generated 1080p H.264 clip).")] = None,
    fps: Annotated[float, typer.Option(help="Sampling rate.")] = 2.0,
    decode: Annotated[str, typer.Option(help="auto, all or keyframes (as streams.<name>.decode).")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plain decode speed versus source + sampler speed on one file, measured side by side."""
    import json
    import tempfile

    from streamlabel.bench.ingest import bench_ingest, make_1080p

    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-") as tmp:
        if file is None:
            console.print("generating a 10 s 1080p H.264 clip …")
            file = make_1080p(Path(tmp) / "bench_1080p.mp4")
        result = bench_ingest(file, fps, decode)
    if as_json:
        print(json.dumps(result))
        return
    console.print(
        f"{result['file']}: {result['frames']} frames, {result['duration_s']} s\n"
        f"  plain decode      {result['decode_fps']:>8.1f} frames/s\n"
        f"  source + sampler  {result['ingest_fps']:>8.1f} frames/s  ({result['mode']} decode, "
        f"{result['sampled']} sampled at {fps} fps)\n"
        f"  ratio             {result['ratio']:>8.3f}\n"
        f"  real-time factor  {result['realtime_factor']:>8.1f}x",
        highlight=False,
    )


@models_app.command("pull")
def models_pull(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Fetch every configured weight (Ultralytics, Hugging Face, `ollama pull`) so the daemon starts offline."""
    from streamlabel.models import pull_all

    cfg = _load_or_exit(config)
    setup_logging("WARNING")
    failures = pull_all(cfg, console)
    raise typer.Exit(1 if failures else 0)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
