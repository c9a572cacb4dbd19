"""``streamlabel bench train-share``: labeling throughput alone and while a student trains (issue 16, point 4).

The bench writes a small store of its own (rendered cartoon-dog frames, their eyes accepted, over four camera-days
so both the train and the val split have frames) and times the real ``Labeler`` on ``frames`` frames twice: alone,
then while a real ``streamlabel train`` runs on that store in a child process (on ``train_device``, with
``max_gpu_memory_gb`` when that is a GPU). The second timing starts once Ultralytics has set its run up
(``args.yaml`` written), so it overlaps the epochs, not the child's imports. The child is stopped (SIGTERM to its
process group, then SIGKILL) when the timing ends; its progress is the epochs in its ``results.csv``.

The labeler runs the tiny random-weight models of ``streamlabel selftest`` (every stage, the in-process tiny VLM as
validator) on the CPU, or the full-size random architectures of ``bench stages`` (validation off) with
``device="cuda"``; there the peak memory of both processes is ``torch.cuda.max_memory_allocated`` (the child writes
its own when it ends).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv
import yaml

from streamlabel.config import Config
from streamlabel.frames import ANCHOR_INDEX_KEY, POLYGON_KEY, STATUS_KEY, VERDICT_KEY, Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.tiny.scene import SceneSpec, render

log = logging.getLogger(__name__)

STREAMS = ("cam0", "cam1", "cam2", "cam3")  # one camera-day each: with val_fraction 0.5 both splits get frames
T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
STEP_S = 120.0  # seconds between the stored frames of a stream
TRAIN_START_TIMEOUT_S = 600.0  # how long the bench waits for the child to reach its first epoch
STOP_WAIT_S = 30.0  # how long the stopped child gets before SIGKILL
GIB = 2**30


def _eye_result(stream: str, seq: int, when: datetime, scene_frame: Any) -> FrameResult:
    """One rendered frame whose two eyes are accepted parts (circle polygons) of its dog."""
    polygons = np.empty(len(scene_frame.parts_xyxy), dtype=object)
    for k, (x1, y1, x2, y2) in enumerate(scene_frame.parts_xyxy):
        centre, radius = (int((x1 + x2) / 2), int((y1 + y2) / 2)), max(2, int((x2 - x1) / 2))
        polygons[k] = cv2.ellipse2Poly(centre, (radius, radius), 0, 0, 360, 30)[:-1].astype(np.float32)
    n = len(polygons)
    verdicts = np.empty(n, dtype=object)
    verdicts[:] = [Verdict(True, 0.9, {"open": True}, "ok", "bench", 0.0, "stated") for _ in range(n)]
    parts = sv.Detections(
        xyxy=np.asarray(scene_frame.parts_xyxy, np.float32),
        confidence=np.full(n, 0.8),
        class_id=np.zeros(n, int),
        tracker_id=np.arange(1, n + 1),
        data={
            ANCHOR_INDEX_KEY: np.zeros(n, int),
            POLYGON_KEY: polygons,
            STATUS_KEY: np.array(["accepted"] * n, dtype=object),
            VERDICT_KEY: verdicts,
            "mask_score": np.full(n, 0.8),
        },
    )
    anchors = sv.Detections(
        xyxy=scene_frame.anchor_xyxy[None, :], confidence=np.array([0.9]), class_id=np.array([16]),
        data={sv.config.CLASS_NAME_DATA_FIELD: np.array(["dog"])},
    )  # fmt: skip
    frame = Frame(stream, seq, seq * STEP_S, when, scene_frame.image, seq == 0)
    return FrameResult(frame, anchors, parts, sv.Detections.empty())


def write_share_store(root: Path, frames_per_stream: int = 8) -> Path:
    """A store of ``4 * frames_per_stream`` frames with two accepted eyes each, written through ``DatasetStore``."""
    from streamlabel.store import DatasetStore

    store = DatasetStore(root, ["eye"], jpeg_quality=90, val_fraction=0.5)
    store.manifest.record_run("bench-train-share", {"bench": "train-share"}, {"detect": "none"})
    try:
        for day, stream in enumerate(STREAMS):
            scene = render(SceneSpec(seconds=frames_per_stream / 10, seed=day))
            for seq, scene_frame in enumerate(scene):
                when = T0 + timedelta(days=day, seconds=seq * STEP_S)
                store.write(_eye_result(stream, seq, when, scene_frame), "bench-train-share")
    finally:
        store.close()
    return root


def labeling_frames(n: int, stream: str) -> list[Frame]:
    """``n`` frames of one rendered scene (a cartoon dog walking), as the reader would hand them over."""
    scene = render(SceneSpec(seconds=n / 10, seed=7))
    return [Frame(stream, i, i / 10, T0 + timedelta(seconds=i / 10), f.image) for i, f in enumerate(scene[:n])]


def labeler_config(folder: Path, device: str) -> Config:
    """The tiny models of ``selftest`` on the CPU; the full-size random architectures of ``bench stages`` on CUDA."""
    from streamlabel.tiny import TinyModels, build_all, tiny_config_dict

    if device == "cpu":
        return Config.model_validate(tiny_config_dict(build_all(folder / "models"), folder / "labels", {}))
    from streamlabel.bench.stages import bench_config, build_full_size

    full = build_full_size(folder / "models")
    data = bench_config(full, device, 4).model_dump(by_alias=True)
    paths = TinyModels(full.yolo, full.grounding_dino, full.sam2_config, full.sam2_checkpoint, Path("none"))
    target = tiny_config_dict(paths, folder / "labels", {})["target"]  # thresholds 0: random weights find parts
    data["target"] = target | {"validation": {"enabled": False}}
    return Config.model_validate(data)


class LabelTimer:
    """The real ``Labeler`` on the bench's frames: one warm-up batch at build, then ``time`` per pass."""

    def __init__(self, cfg: Config, frames: int) -> None:
        from streamlabel.pipeline import Labeler, Stages
        from streamlabel.stages.base import Runtime

        self.runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype, cfg.models.compile)
        self.labeler = Labeler(cfg, Stages.build(cfg, self.runtime))
        self.batch = cfg.models.batch_size
        self.frames = frames
        self.passes = 0
        self.time_pass()  # the warm-up: lazy loads, kernels, caches

    def time_pass(self) -> dict[str, Any]:
        """Label ``frames`` frames (a fresh stream each pass) and return frames/s and the labeler's peak memory."""
        frames = labeling_frames(self.frames, f"pass{self.passes}")
        self.passes += 1
        cuda = self.runtime.cuda
        if cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for i in range(0, len(frames), self.batch):
            self.labeler.label(frames[i : i + self.batch])
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        out: dict[str, Any] = {"seconds": round(seconds, 3), "frames_per_s": round(len(frames) / seconds, 3)}
        if cuda:
            out["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
        return out


def train_config(store: Path, path: Path, device: str, imgsz: int, max_gpu_memory_gb: float | None) -> Path:
    """The config the ``streamlabel train`` child reads: the bench's store, a random-init YOLO11n-seg."""
    train = {"model": "yolo11n-seg.yaml", "imgsz": imgsz, "batch": 4, "workers": 0, "device": device}
    if max_gpu_memory_gb is not None and device != "cpu":
        train["max_gpu_memory_gb"] = max_gpu_memory_gb
    data = {"store": {"path": str(store)}, "train": train, "review": {"address": None, "audit_fraction": 0}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class TrainChild:
    """``streamlabel train`` in a child process of its own session (see ``child_main``), and its progress."""

    def __init__(self, config: Path, store: Path, epochs: int, work: Path) -> None:
        self.store, self.peak_path, self.log_path = store, work / "train_peak.json", work / "train.log"
        self.started_s: float | None = None  # monotonic time the child's training was set up
        command = [sys.executable, "-m", "streamlabel.bench.train_share", str(self.peak_path)]
        command += ["train", "-c", str(config), "--epochs", str(epochs)]
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)

    def epochs_done(self) -> int:
        """Epochs finished: the data lines of the run's ``results.csv`` (Ultralytics appends one per epoch)."""
        found = list((self.store / "models").glob("*/results.csv"))
        return sum(max(0, len(p.read_text().splitlines()) - 1) for p in found)

    def wait_started(self, timeout_s: float = TRAIN_START_TIMEOUT_S) -> None:
        """Wait until Ultralytics has set the run up (``args.yaml``); raises if the child ends or stalls first."""
        deadline = time.monotonic() + timeout_s
        while not list((self.store / "models").glob("*/args.yaml")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"the streamlabel train child did not start training (see {self.log_path}):\n{tail}")
            time.sleep(0.2)
        self.started_s = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """SIGTERM the child's process group (SIGKILL after ``STOP_WAIT_S``); its exit code and peak GPU memory."""
        running = self.proc.poll() is None
        trained_s = time.monotonic() - self.started_s if self.started_s is not None else 0.0
        if running:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        peak = json.loads(self.peak_path.read_text())["peak_gpu_gb"] if self.peak_path.is_file() else None
        out = {"pid": self.proc.pid, "running_at_end": running, "exit_code": self.proc.returncode}
        return out | {"trained_s": round(trained_s, 2), "peak_gpu_gb": peak}


def bench_train_share(
    frames: int = 32,
    device: str = "cpu",
    train_device: str = "cpu",
    epochs: int = 1000,
    imgsz: int = 64,
    max_gpu_memory_gb: float | None = 8.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Labeling frames/s alone and while ``streamlabel train`` runs; one JSON-able dict (module doc)."""
    _quiet_libraries()
    say = progress or (lambda _msg: None)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-train-share-") as tmp:
        work = Path(tmp)
        say("writing the training store and building the labeler's models …")
        store = write_share_store(work / "store")
        timer = LabelTimer(labeler_config(work, device), frames)
        say(f"labeling {frames} frames alone …")
        alone = timer.time_pass()
        cap = max_gpu_memory_gb if train_device != "cpu" else None
        child = TrainChild(train_config(store, work / "train.yml", train_device, imgsz, cap), store, epochs, work)
        try:
            say(f"starting streamlabel train on {train_device} …")
            child.wait_started()
            epochs_before = child.epochs_done()
            say(f"labeling {frames} frames while it trains …")
            shared = timer.time_pass()
            epochs_after = child.epochs_done()
        finally:
            stopped = child.stop()
        epochs_done = child.epochs_done()
    train = {"device": train_device, "epochs": epochs, "imgsz": imgsz, "max_gpu_memory_gb": cap}
    train |= {"epochs_at_start": epochs_before, "epochs_during": epochs_after - epochs_before}
    return {
        "device": timer.runtime.device,
        "models": "tiny random weights" if device == "cpu" else "full-size random architectures",
        "frames": frames,
        "batch": timer.batch,
        "load_average": load_before,
        "cpu_count": os.cpu_count(),
        "alone": alone,
        "while_training": shared,
        "ratio": round(shared["frames_per_s"] / alone["frames_per_s"], 3),
        "train": train | {"epochs_done": epochs_done} | stopped,
    }


def _quiet_libraries() -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # sam2 uses torch.jit.script, deprecated in torch


def child_main(argv: list[str]) -> int:
    """``python -m streamlabel.bench.train_share PEAK_JSON train …``: the real ``streamlabel train`` command, then
    (however it ends, SIGTERM included) its peak CUDA memory written to PEAK_JSON (null when it used no GPU)."""
    from streamlabel.cli import app

    peak_path, args = Path(argv[0]), argv[1:]
    code = 0
    try:
        returned = app(args, standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except BaseException as exc:  # the SIGTERM of the bench ends the run as KeyboardInterrupt/Abort
        code = getattr(exc, "exit_code", 1)
    finally:
        peak_path.write_text(json.dumps({"peak_gpu_gb": _own_peak_gb()}))
    return code


def _own_peak_gb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    return round(max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / GIB, 3)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
