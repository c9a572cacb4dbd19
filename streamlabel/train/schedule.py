"""Retraining on a schedule (``train.every_labels`` / ``train.every_s``) and promoting only a better student.

The daemon's housekeeping thread calls ``TrainScheduler.tick(now_s)`` every round. When a run is due and none is
going, it starts ``streamlabel train -c FILE --json --promote`` as a subprocess (its output appended to
``<store>/models/scheduled.log``): training, its evaluation and the promotion never share the daemon's process,
memory or GPU context, and a crash of the run cannot stop the daemon. Later ticks poll it, stop it after
``train.timeout_s``, and log and count how it ended. ``--promote`` evaluates the new student and the current one
on the same set (``promote_if_better``) and promotes the new one only when it wins.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml

from streamlabel.config import Config
from streamlabel.events.models import ModelTrainedEvent
from streamlabel.store.manifest import Manifest
from streamlabel.store.trained_models import (
    FAILED,
    FINISHED,
    RUNNING,
    ModelRuns,
    accepted_labels_since,
    read_models,
)
from streamlabel.train.evaluate import Predictor, beats, evaluate
from streamlabel.train.gold import evaluation_set
from streamlabel.train.runs import MANIFEST_NAME, MODELS_DIR

log = logging.getLogger(__name__)

LOG_NAME = "scheduled.log"

# Builds a predictor for a student (run id or path); tests pass one that needs no model.
PredictorFactory = Callable[[str], Predictor]


def promote_if_better(
    manifest: Manifest, store_root: Path, run_id: str, cfg: Config, predictor_of: PredictorFactory | None = None
) -> dict[str, Any]:
    """Evaluate ``run_id`` and the current student on the same set; promote ``run_id`` when it beats it.

    Returns ``{"promoted": bool, "metric": ..., "new": report, "current": report or None}``. The promotion sets
    ``models.promoted`` and publishes a ``model_trained`` event with ``promoted: true`` in one transaction.
    """
    runs = ModelRuns(manifest)
    row = runs.get(run_id)
    if row is None or row["status"] != FINISHED:
        raise ValueError(f"run {run_id} is not a finished run of {store_root}: only a finished run can be promoted")
    current_id = runs.promoted()
    eval_set = evaluation_set(manifest, store_root)

    def report(student: str) -> dict[str, Any]:
        predictor = predictor_of(student) if predictor_of else None
        return evaluate(manifest, store_root, student, predictor, device=cfg.train.device, eval_set=eval_set)

    new = report(run_id)
    current = report(current_id) if current_id and current_id != run_id else None
    metric = cfg.train.promote_metric
    won = beats(new, current, metric, cfg.train.min_improvement)
    if won:
        runs.promote(run_id, _promoted_event(row, new))
    _log_outcome(run_id, current_id, metric, new, current, won)
    return {"promoted": won, "metric": metric, "new": new, "current": current}


def _promoted_event(row: dict[str, Any], evaluation: dict[str, Any]) -> ModelTrainedEvent:
    record = json.loads(row["metrics"] or "{}")
    return ModelTrainedEvent(
        run_id=row["run_id"],
        base_model=row["base_model"],
        weights=row["weights"] or "",
        snapshot_hash=row["snapshot_hash"],
        frames=record.get("frames", {}),
        epochs=int(record.get("epochs", 0)),
        metrics=record.get("val", {}),
        evaluation=evaluation,
        promoted=True,
    )


def _log_outcome(run_id: str, current_id: str | None, metric: str, new: dict, current: dict | None, won: bool) -> None:
    theirs = current["student"].get(metric) if current else None
    log.info(
        "train: %s %s on the %s set: %s %s against %s of the current student %s",
        run_id,
        "promoted" if won else "not promoted",
        new["set"],
        metric,
        new["student"].get(metric),
        theirs,
        current_id or "(none)",
    )


class TrainScheduler:
    """Starts at most one training subprocess at a time when ``train.every_labels`` or ``train.every_s`` say so."""

    def __init__(
        self,
        cfg: Config,
        manifest: Manifest,
        store_root: Path,
        config_path: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        """``command`` replaces ``streamlabel train ... --promote`` (tests); ``config_path`` is the daemon's file
        (None: the effective config, secrets redacted, is written beside the runs for the subprocess)."""
        self.cfg, self.manifest, self.root = cfg, manifest, Path(store_root)
        self.config_path = config_path
        self.command = command
        self.started = self.failed = self.finished = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_started_s = 0.0
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()  # tick runs in the housekeeping thread, stop in the one stopping the daemon

    @property
    def enabled(self) -> bool:
        """Whether the config asks for scheduled runs."""
        return self.cfg.train.every_labels is not None or self.cfg.train.every_s is not None

    @property
    def running(self) -> bool:
        return self._proc is not None

    def tick(self, now_s: float) -> str | None:
        """Poll the running run or start one when due; ``now_s`` is the wall clock (Unix seconds).

        Returns what happened: ``started``, ``finished``, ``failed``, ``timeout``, or None.
        """
        if not self.enabled:
            return None
        with self._lock:
            if self._proc is not None:
                return self._poll(now_s)
            if self.due(now_s):
                self._start(now_s)
                return "started"
            return None

    def due(self, now_s: float) -> bool:
        """Whether a run should start now: enough new accepted labels, or the period passed with some new ones."""
        last = next(iter(read_models(self.root / MANIFEST_NAME)), None)
        t = self.cfg.train
        if last and last["status"] == RUNNING and now_s - _unix(last["started"]) < t.timeout_s:
            return False  # a run started by hand is still going: one at a time
        new_labels = accepted_labels_since(self.manifest, last["started"] if last else None)
        if t.every_labels is not None and new_labels >= t.every_labels:
            return True
        if t.every_s is not None and new_labels > 0:
            last_s = _unix(last["started"]) if last else float("-inf")
            return now_s - last_s >= t.every_s
        return False

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the running run to end (the next ``tick`` reports it); True when it ended."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop a running run (the daemon stops): SIGTERM, then SIGKILL after ``timeout_s``."""
        with self._lock:
            self._stop(timeout_s)

    def _stop(self, timeout_s: float) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._fail_running("stopped with the daemon")
        log.warning("train: the scheduled run was stopped with the daemon")
        self._close()

    def _argv(self) -> list[str]:
        if self.command is not None:
            return list(self.command)
        path = self.config_path
        if path is None:
            path = self.root / MODELS_DIR / ".scheduled-config.yml"
            path.write_text(yaml.safe_dump(self.cfg.public_dump(), sort_keys=False))
        return [sys.executable, "-m", "streamlabel.cli", "train", "-c", str(path), "--json", "--promote"]

    def _start(self, now_s: float) -> None:
        (self.root / MODELS_DIR).mkdir(parents=True, exist_ok=True)
        argv = self._argv()
        self._log = open(self.root / MODELS_DIR / LOG_NAME, "ab")  # noqa: SIM115  (closed when the run ends)
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._proc_started_s = now_s
        self.started += 1
        log.info("train: started a scheduled run (pid %d, log %s)", self._proc.pid, self.root / MODELS_DIR / LOG_NAME)

    def _poll(self, now_s: float) -> str | None:
        assert self._proc is not None
        rc = self._proc.poll()
        if rc is None:
            if now_s - self._proc_started_s < self.cfg.train.timeout_s:
                return None
            self._proc.kill()
            self._proc.wait()
            self._fail_running(f"stopped after train.timeout_s ({self.cfg.train.timeout_s:.0f} s)")
            self.failed += 1
            log.error(
                "train: the scheduled run ran past train.timeout_s (%.0f s) and was stopped", self.cfg.train.timeout_s
            )
            self._close()
            return "timeout"
        self._close()
        last = next(iter(read_models(self.root / MANIFEST_NAME)), None)
        if rc == 0:
            self.finished += 1
            log.info("train: scheduled run %s finished", last["run_id"] if last else "?")
            return "finished"
        self.failed += 1
        why = last["error"] if last and last["status"] == FAILED else f"exit code {rc}"
        log.error("train: scheduled run failed (%s); %d failure(s) so far; see %s", why, self.failed, LOG_NAME)
        return "failed"

    def _fail_running(self, reason: str) -> None:
        """Mark the newest run failed when the killed subprocess left it ``running``."""
        last = next(iter(read_models(self.root / MANIFEST_NAME)), None)
        if last is not None and last["status"] == RUNNING:
            ModelRuns(self.manifest).fail(last["run_id"], reason)

    def _close(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def scheduler_for(
    cfg: Config, manifest: Manifest, store_root: Path, config_path: Path | None = None
) -> TrainScheduler | None:
    """The daemon's scheduler, or None when neither ``train.every_labels`` nor ``train.every_s`` is set."""
    scheduler = TrainScheduler(cfg, manifest, store_root, config_path)
    return scheduler if scheduler.enabled else None
