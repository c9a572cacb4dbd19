"""``streamlabel train`` and ``streamlabel evaluate``: a student trained on the store, measured on the gold set."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    EXIT_MODEL,
    ConfigOpt,
    app,
    console,
    load_or_exit,
    setup_logging,
)
from streamlabel.config import Config

if TYPE_CHECKING:
    from streamlabel.store.manifest import Manifest
    from streamlabel.train.trainer import TrainOptions, TrainResult

EXIT_TRAIN = 1  # the run failed (recorded as a failed row of the models table)
METRIC_ROWS = (("box mAP50", "box_map50"), ("box mAP50-95", "box_map50_95"))
METRIC_ROWS += (("mask mAP50", "mask_map50"), ("mask mAP50-95", "mask_map50_95"))


def _manifest(cfg: Config) -> tuple[Path, Manifest]:
    """The store's manifest (never the DatasetStore: the daemon may be writing the store meanwhile)."""
    from streamlabel.store.manifest import Manifest

    root = Path(cfg.store.path)
    if not (root / "manifest.sqlite").is_file():
        console.print(f"[red]{root} holds no store (no manifest.sqlite): set store.path to the daemon's store[/]")
        raise typer.Exit(EXIT_CONFIG)
    return root, Manifest(root / "manifest.sqlite", cfg.store.durability)


def _options(cfg: Config, model: str | None, epochs: int | None, imgsz: int | None, device: str | None) -> TrainOptions:
    from streamlabel.train.trainer import TrainOptions

    t = cfg.train
    return TrainOptions(
        model=model or t.model,
        epochs=epochs or t.epochs,
        imgsz=imgsz or t.imgsz,
        batch=t.batch,
        workers=t.workers,
        device=device or t.device,
        gold_guard_s=t.gold_guard_s,
        max_gpu_memory_gb=t.max_gpu_memory_gb,
    )


@app.command("train")
def train_cmd(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    model: Annotated[str | None, typer.Option(help="Base model: a .pt or a .yaml (default: train.model).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (default: train.epochs).")] = None,
    imgsz: Annotated[int | None, typer.Option(min=32, help="Image size (default: train.imgsz).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, 0, cuda:1 (default: train.device).")] = None,
    since: Annotated[str | None, typer.Option(help="Only frames captured at or after this UTC ISO time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    promote: Annotated[
        bool, typer.Option(help="Then evaluate it against the current student and promote it if it wins.")
    ] = False,
) -> None:
    """Train a YOLO-seg student on a frozen snapshot of the store's dataset (gold-set frames left out)."""
    from streamlabel.train.trainer import BaseModelError, TrainError, parse_since, train_student

    cfg = load_or_exit(config)
    setup_logging(cfg.daemon.log_level)
    root, manifest = _manifest(cfg)
    opts = _options(cfg, model, epochs, imgsz, device)
    try:
        opts.since = parse_since(since)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped scheduled run is recorded as failed, not left running
    try:
        with _EpochProgress(opts.epochs) as on_epoch:
            result = train_student(manifest, root, [cfg.target.part.class_name], opts, on_epoch)
    except TrainError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_MODEL if isinstance(exc.__cause__, BaseModelError) else EXIT_TRAIN) from None
    outcome = _promote(manifest, root, result.run_id, cfg) if promote else None
    if as_json:
        print(json.dumps(_result_json(result, outcome)))
    else:
        _print_summary(result, root, outcome)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


class _EpochProgress:
    """A rich progress bar of the epochs, fed by the trainer's epoch callback."""

    def __init__(self, epochs: int) -> None:
        columns = (TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20), TimeElapsedColumn())
        self.bar = Progress(*columns, TextColumn("{task.fields[figures]}"), console=console)
        self.task = self.bar.add_task("epochs", total=epochs, figures="")

    def __enter__(self) -> Any:
        self.bar.start()
        return self.update

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, epoch: int, epochs: int, figures: dict[str, float]) -> None:
        keys = ("train/seg_loss", "mask_map50_95")
        shown = "  ".join(f"{k.removeprefix('train/')} {figures[k]:.3f}" for k in keys if k in figures)
        self.bar.update(self.task, completed=epoch, total=epochs, figures=shown)


def _promote(manifest: Manifest, root: Path, run_id: str, cfg: Config) -> dict[str, Any] | None:
    from streamlabel.train.schedule import promote_if_better

    try:
        return promote_if_better(manifest, root, run_id, cfg)
    except Exception as exc:  # the run stands; promotion can be tried again by hand
        console.print(f"[red]evaluating {run_id} for promotion failed: {exc}[/]", highlight=False)
        raise typer.Exit(EXIT_TRAIN) from None


def _result_json(result: TrainResult, outcome: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "folder": str(result.folder),
        "weights": str(result.weights),
        "frames": result.frames,
        "excluded": result.excluded,
        "snapshot_hash": result.snapshot_hash,
        "seconds": round(result.seconds, 1),
        "val": result.metrics,
        "evaluation": result.evaluation,
        "promoted": None if outcome is None else outcome["promoted"],
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _print_summary(result: TrainResult, root: Path, outcome: dict[str, Any] | None) -> None:
    console.print(
        f"run [bold]{result.run_id}[/] in {result.seconds:.0f} s: {result.frames['train']} train, "
        f"{result.frames['val']} val frames (left out: {result.excluded})",
        highlight=False,
    )
    kind = (result.evaluation or {}).get("set")
    where = {"gold": "gold set", "val": "val split, ours (no gold set)"}.get(kind or "", "evaluation failed (log)")
    table = Table("figure", "val split (Ultralytics)", where)
    student = (result.evaluation or {}).get("student", {})
    for name, key in METRIC_ROWS:
        table.add_row(name, _fmt(result.metrics.get(key)), _fmt(student.get(key)))
    console.print(table)
    console.print(f"weights: {result.weights}", highlight=False)
    if outcome is not None:
        console.print("promoted: the daemon's new student" if outcome["promoted"] else "not promoted (did not win)")


@app.command("evaluate")
def evaluate_cmd(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    model: Annotated[
        str | None, typer.Option(help="Run id or weights path (default: the promoted student, else the newest run).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    runs: Annotated[bool, typer.Option("--runs", help="List the training runs of the store instead.")] = False,
) -> None:
    """The student's box and mask mAP on the gold set (people's audits) beside the teacher's precision and recall."""
    from streamlabel.train.evaluate import evaluate
    from streamlabel.train.runs import UnknownStudentError

    cfg = load_or_exit(config)
    setup_logging(cfg.daemon.log_level)
    root, manifest = _manifest(cfg)
    if runs:
        _print_runs(root, as_json)
        return
    student = model or _default_student(root)
    try:
        report = evaluate(manifest, root, student, device=cfg.train.device)
    except UnknownStudentError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_MODEL) from None
    if as_json:
        print(json.dumps(report))
        return
    _print_report(report)


def _print_runs(root: Path, as_json: bool) -> None:
    """The ``models`` table, newest first: run id, status, frames, the evaluation figure, promoted."""
    from streamlabel.store.trained_models import read_models
    from streamlabel.train.runs import MANIFEST_NAME

    rows = read_models(root / MANIFEST_NAME)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(Column("run (UTC start)", no_wrap=True), "status", "frames")
    table.add_column("mask mAP50-95", no_wrap=True)
    table.add_column("student")
    for r in rows:
        evaluation = (json.loads(r["metrics"] or "{}").get("evaluation")) or {}
        figure = f"{_fmt(evaluation.get('student', {}).get('mask_map50_95'))} {evaluation.get('set', '')}"
        status = r["status"] + (f": {r['error']}" if r["error"] else "")
        table.add_row(
            r["run_id"],
            status,
            str(r["frames"]),
            figure,
            "yes" if r["promoted"] else "",
        )
    console.print(table)


def _default_student(root: Path) -> str:
    from streamlabel.store.trained_models import FINISHED, read_models
    from streamlabel.train.runs import MANIFEST_NAME, current_student

    current = current_student(root)
    if current:
        return current
    finished = [r["run_id"] for r in read_models(root / MANIFEST_NAME) if r["status"] == FINISHED]
    if not finished:
        console.print(f"[red]{root} has no trained student yet: run `streamlabel train` or pass --model PATH.pt[/]")
        raise typer.Exit(EXIT_MODEL)
    return finished[0]


def _print_report(report: dict[str, Any]) -> None:
    console.print(
        f"{report['set']} set: {report['frames']} frames, {report['parts']} true parts "
        f"({report['skipped']} without an image left out)",
        highlight=False,
    )
    console.print(report["note"], highlight=False)
    table = Table("figure", f"student {report['student']['model']}", "teacher (automatic acceptance)")
    for name, key in METRIC_ROWS:
        table.add_row(name, _fmt(report["student"].get(key)), "")
    teacher = report["teacher"] or {}
    table.add_row("precision", "", _fmt(teacher.get("precision")))
    table.add_row("recall", "", _fmt(teacher.get("recall")))
    console.print(table)
