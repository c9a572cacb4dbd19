"""``streamlabel train``: an Ultralytics YOLO-seg student trained on a frozen snapshot of the store's dataset.

Steps, each recorded: a ``models`` row (``running``), the snapshot and the run's own dataset folder
(``snapshot.py``; removed again when training ends), Ultralytics training into ``<store>/models/<run_id>/``
(``weights/best.pt``, ``last.pt``, ``args.yaml``, ``results.csv``), ``metrics.json`` (the val figures, then the
gold-set evaluation), and the row ``finished`` with a ``model_trained`` event in one transaction. Any failure
marks the row ``failed`` with the reason and raises ``TrainError``. A missing ``.pt`` is refused before Ultralytics
sees it, unless it is an Ultralytics asset name (``yolo11n-seg.pt``): that is downloaded when the network allows,
and refused with the offline fix when it does not.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamlabel.events.models import ModelTrainedEvent
from streamlabel.store.manifest import Manifest
from streamlabel.store.trained_models import ModelRuns
from streamlabel.train.evaluate import evaluate
from streamlabel.train.metrics import METRIC_NAMES
from streamlabel.train.runs import new_run_id
from streamlabel.train.runs import run_dir as run_folder_of
from streamlabel.train.snapshot import Snapshot, check_trainable, materialize, take_snapshot

log = logging.getLogger(__name__)

# Ultralytics' names of the val figures of a segmentation run -> ours.
_ULTRALYTICS_METRICS = {
    "metrics/mAP50(B)": "box_map50",
    "metrics/mAP50-95(B)": "box_map50_95",
    "metrics/mAP50(M)": "mask_map50",
    "metrics/mAP50-95(M)": "mask_map50_95",
}

# Called after every epoch: (epoch done, epochs, figures such as the losses and the val mAP).
EpochCallback = Callable[[int, int, dict[str, float]], None]


class TrainError(RuntimeError):
    """A training run that failed; the message says why and what to do, ``run_id`` names its ``models`` row."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class BaseModelError(ValueError):
    """The base model is neither a local .pt nor a .yaml (nothing is downloaded)."""


@dataclass
class TrainOptions:
    """What one run trains from and how (``streamlabel train`` options over the ``train`` config section)."""

    model: str = "yolo11n-seg.pt"
    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    device: str = "cpu"
    since: str | None = None  # UTC ISO time: only frames captured at or after it
    gold_guard_s: float = 60.0
    max_gpu_memory_gb: float | None = None
    workers: int = 2  # Ultralytics dataloader processes
    evaluate: bool = True  # evaluate the new student on the gold set (or val split) when it is done


@dataclass
class TrainResult:
    """A finished run."""

    run_id: str
    folder: Path
    weights: Path
    frames: dict[str, int]
    snapshot_hash: str
    metrics: dict[str, float | None]
    evaluation: dict[str, Any] | None
    seconds: float
    excluded: dict[str, int] = field(default_factory=dict)


def check_base_model(model: str) -> str:
    """The base model as Ultralytics should get it: a .yaml as given, a .pt found on disk or in its weights_dir, or
    an Ultralytics asset name (``yolo11n-seg.pt``) downloaded into weights_dir when the network allows it."""
    path = Path(model).expanduser()
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return model
    if suffix != ".pt":
        raise BaseModelError(f"train.model {model!r} is neither a .pt (weights) nor a .yaml (architecture)")
    if path.is_file():
        return str(path)
    from ultralytics.utils import SETTINGS

    cached = Path(SETTINGS.get("weights_dir", "")) / path.name
    if cached.is_file():
        return str(cached)
    where = f"no such file at {path.resolve()} nor in Ultralytics' weights_dir {SETTINGS.get('weights_dir')}"
    offline = f"put the weights there, give a path, or train from the architecture ({path.stem}.yaml: random init)"
    if path.parent != Path(".") or not _is_asset(path.name):
        raise BaseModelError(f"train.model {model!r}: {where}; nothing is downloaded for it. Fix: {offline}")
    try:  # pretrained weights with network; fails within seconds offline
        from ultralytics.utils.downloads import attempt_download_asset

        got = Path(attempt_download_asset(str(cached)))
    except Exception as exc:
        raise BaseModelError(
            f"train.model {model!r}: {where}, and its download failed ({type(exc).__name__}: {str(exc)[:160]}). "
            f"Fix: {offline}"
        ) from None
    if not got.is_file():
        raise BaseModelError(f"train.model {model!r}: {where}, and the download left no file. Fix: {offline}")
    log.info("train: downloaded the pretrained %s into %s", path.name, got.parent)
    return str(got)


def _is_asset(name: str) -> bool:
    """Whether Ultralytics publishes weights of that name (its release assets)."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return name in GITHUB_ASSETS_NAMES


def parse_since(value: str | None) -> str | None:
    """``--since`` (ISO date or time; a naive one is UTC) as the UTC ISO string frames' times compare with."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--since {value!r} is not an ISO date or time: write 2026-11-20 or 2026-11-20T08:00"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def train_student(
    manifest: Manifest,
    store_root: Path,
    class_names: list[str],
    opts: TrainOptions,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train one student (module doc); raises ``TrainError`` after recording the failed run."""
    run_id, started = new_run_id(), time.monotonic()
    runs = ModelRuns(manifest)
    runs.start(run_id, opts.model, "", 0)
    log.info(
        "train: run %s from %s on %s (%d epochs, imgsz %d)", run_id, opts.model, opts.device, opts.epochs, opts.imgsz
    )
    try:
        result = _run(manifest, Path(store_root), class_names, opts, run_id, runs, on_epoch)
    except KeyboardInterrupt:
        runs.fail(run_id, "interrupted")
        raise
    except Exception as exc:
        message = _explain(exc)
        runs.fail(run_id, message)
        log.error("train: run %s failed: %s", run_id, message)
        raise TrainError(run_id, f"training run {run_id} failed: {message}") from exc
    result.seconds = time.monotonic() - started
    return result


def _explain(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"out of disk space ({exc}); free space under the store or set store.max_gb"
    return f"{type(exc).__name__}: {exc}".strip()


def _run(
    manifest: Manifest,
    root: Path,
    class_names: list[str],
    opts: TrainOptions,
    run_id: str,
    runs: ModelRuns,
    on_epoch: EpochCallback | None,
) -> TrainResult:
    base = check_base_model(opts.model)
    snapshot = take_snapshot(manifest, root, opts.gold_guard_s, opts.since)
    check_trainable(snapshot, root)
    folder = run_folder_of(root, run_id)
    folder.mkdir(parents=True)
    data_yaml = materialize(snapshot, root, folder, class_names)
    check_trainable(snapshot, root)  # frames pruned meanwhile may have emptied a subset
    runs.set_snapshot(run_id, snapshot.hash, len(snapshot.frames))
    try:
        metrics = _fit(base, data_yaml, folder, opts, on_epoch)
    finally:  # the links would double-count in a walk of the store; snapshot.json is the record of the dataset
        shutil.rmtree(folder / "dataset", ignore_errors=True)
    weights = folder / "weights" / "best.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"Ultralytics finished without {weights}")
    evaluation = _evaluate(manifest, root, run_id, opts) if opts.evaluate else None
    return _record(runs, run_id, root, weights, snapshot, metrics, evaluation, opts)


def _record(
    runs: ModelRuns,
    run_id: str,
    root: Path,
    weights: Path,
    snapshot: Snapshot,
    metrics: dict[str, float | None],
    evaluation: dict[str, Any] | None,
    opts: TrainOptions,
) -> TrainResult:
    """Write ``metrics.json``, then mark the row finished with its ``model_trained`` event (one transaction)."""
    record = {"val": metrics, "evaluation": evaluation, "frames": snapshot.counts, "excluded": snapshot.excluded}
    record["epochs"] = opts.epochs
    (weights.parent.parent / "metrics.json").write_text(json.dumps(record, indent=1))
    rel = str(weights.relative_to(root))
    event = ModelTrainedEvent(
        run_id=run_id,
        base_model=opts.model,
        weights=rel,
        snapshot_hash=snapshot.hash,
        frames=snapshot.counts,
        epochs=opts.epochs,
        metrics=metrics,
        evaluation=evaluation,
    )
    runs.finish(run_id, record, rel, event)
    folder = weights.parent.parent
    return TrainResult(
        run_id, folder, weights, snapshot.counts, snapshot.hash, metrics, evaluation, 0.0, snapshot.excluded
    )


def _evaluate(manifest: Manifest, root: Path, run_id: str, opts: TrainOptions) -> dict[str, Any] | None:
    try:
        return evaluate(manifest, root, run_id, imgsz=opts.imgsz, device=opts.device)
    except Exception:  # the run itself succeeded; its figure on the gold set can be had with `streamlabel evaluate`
        log.exception("train: evaluating run %s failed; the run stands without it", run_id)
        return None


def _fit(base: str, data_yaml: Path, folder: Path, opts: TrainOptions, on_epoch: EpochCallback | None) -> dict:
    """Ultralytics training into ``folder``; returns the val figures of the best weights."""
    from ultralytics import YOLO

    _cap_gpu_memory(opts.device, opts.max_gpu_memory_gb)
    model = YOLO(base, task="segment")
    if on_epoch is not None:
        model.add_callback("on_fit_epoch_end", _once_per_epoch(on_epoch))
    results = model.train(
        data=str(data_yaml),
        epochs=opts.epochs,
        imgsz=opts.imgsz,
        batch=opts.batch,
        device=opts.device,
        workers=opts.workers,
        project=str(folder.parent),
        name=folder.name,
        exist_ok=True,
        plots=False,
        verbose=False,
        amp=opts.device not in ("cpu", "mps"),
    )
    found = getattr(results, "results_dict", None) or {}
    return {ours: _float(found.get(theirs)) for theirs, ours in _ULTRALYTICS_METRICS.items()}


def _once_per_epoch(on_epoch: EpochCallback) -> Callable[[Any], None]:
    """Ultralytics' ``on_fit_epoch_end`` also fires after the final validation: report each epoch once."""
    done: set[int] = set()

    def callback(trainer: Any) -> None:
        epoch = min(int(trainer.epoch) + 1, int(trainer.epochs))
        if epoch not in done:
            done.add(epoch)
            on_epoch(epoch, int(trainer.epochs), _figures(trainer))

    return callback


def _figures(trainer: Any) -> dict[str, float]:
    figures = {k: float(v) for k, v in (trainer.label_loss_items(trainer.tloss, prefix="train") or {}).items()}
    for theirs, ours in _ULTRALYTICS_METRICS.items():
        if theirs in (trainer.metrics or {}):
            figures[ours] = float(trainer.metrics[theirs])
    return figures


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _cap_gpu_memory(device: str, max_gb: float | None) -> None:
    """Cap this process's share of a CUDA device (``train.max_gpu_memory_gb``); nothing on the CPU."""
    if max_gb is None or str(device).lower() in ("cpu", "mps"):
        return
    import torch

    index = int(str(device).split(":")[-1].split(",")[0] or 0)
    total_gb = torch.cuda.get_device_properties(index).total_memory / 2**30
    torch.cuda.set_per_process_memory_fraction(min(max_gb / total_gb, 1.0), index)
    log.info("train: GPU %d capped at %.1f of %.1f GiB (train.max_gpu_memory_gb)", index, max_gb, total_gb)


__all__ = ["METRIC_NAMES", "BaseModelError", "TrainError", "TrainOptions", "TrainResult", "train_student"]
