"""``streamlabel bench stages``: per-stage latency and throughput of full-size architectures with random weights.

The production architectures (YOLO11m, Grounding DINO tiny, SAM2.1 Hiera tiny) are built from their configs with
random weights, saved, and loaded back through the stages' real loading paths, so the figures are honest speeds of
the real code without any download. Each stage gets fixed inputs, one dog per frame and two eyes per dog, so its
time does not depend on what random weights happen to find. The VLM stage is not timed here yet: it is I/O to an
Ollama server in production, and a 4B-class random model only makes sense on a GPU (see docs/performance.md).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config import Config
from streamlabel.stages.base import Runtime, backend_factory

log = logging.getLogger(__name__)

FRAME_W, FRAME_H = 1280, 720  # a typical pet-camera frame
DOG_BOX = (380.0, 160.0, 900.0, 640.0)  # one dog per frame, in pixels
EYE_BOXES = ((520.0, 260.0, 560.0, 290.0), (640.0, 262.0, 680.0, 292.0))  # two eyes inside it
DEFAULT_BATCHES = (1, 4, 16)
ARCHITECTURES = {
    "detect": "yolo11m (random weights)",
    "ground": "grounding-dino-tiny (random weights)",
    "segment": "sam2.1-hiera-tiny (random weights)",
}


@dataclass(frozen=True)
class FullSizeModels:
    """Saved random-weight models of the production architectures."""

    yolo: Path
    grounding_dino: Path
    sam2_config: Path
    sam2_checkpoint: Path


def build_full_size(folder: Path, detector: str = "yolo11m") -> FullSizeModels:
    """Build and save YOLO11m, Grounding DINO tiny and SAM2.1 Hiera tiny with random weights under ``folder``."""
    from streamlabel.tiny.gdino import build_random_grounding_dino
    from streamlabel.tiny.sam2 import build_random_sam2
    from streamlabel.tiny.yolo import build_tiny_yolo

    yolo = build_tiny_yolo(folder / "yolo", arch=detector)
    gdino = build_random_grounding_dino(folder / "grounding-dino", full_size=True)
    sam_cfg, sam_ckpt = build_random_sam2(folder / "sam2", full_size=True)
    return FullSizeModels(yolo, gdino, sam_cfg, sam_ckpt)


def bench_config(models: FullSizeModels, device: str, batch: int) -> Config:
    """A config that loads the saved models through the production paths, batching ``batch`` at a time."""
    return Config.model_validate(
        {
            "models": {
                "device": device,
                "batch_size": batch,
                "detect": {"weights": str(models.yolo), "imgsz": 640, "max_det": 10},
                "ground": {"model": str(models.grounding_dino), "batch_size": batch},
                "segment": {"config": str(models.sam2_config), "checkpoint": str(models.sam2_checkpoint)},
            },
            "target": {"validation": {"enabled": False}},
        }
    )


def synthetic_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB frames of textured noise (the content does not change the cost of a forward pass)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(FRAME_H, FRAME_W, 3), dtype=np.uint8)
    return [np.roll(base, 7 * i, axis=1) for i in range(n)]


def fixed_anchors(n: int) -> list[sv.Detections]:
    """One dog per frame."""
    out = []
    for _ in range(n):
        d = sv.Detections(
            xyxy=np.array([DOG_BOX], dtype=np.float32),
            confidence=np.array([0.9], dtype=np.float32),
            class_id=np.array([16]),
        )
        d.data["class_name"] = np.array(["dog"])
        out.append(d)
    return out


def fixed_parts(n: int) -> list[sv.Detections]:
    """Two eyes inside the dog of every frame."""
    out = []
    for _ in range(n):
        d = sv.Detections(
            xyxy=np.array(EYE_BOXES, dtype=np.float32),
            confidence=np.array([0.8, 0.7], dtype=np.float32),
            class_id=np.zeros(2, dtype=int),
        )
        d.data["anchor_index"] = np.zeros(2, dtype=int)
        out.append(d)
    return out


def _time_it(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> list[float]:
    fn()  # warm-up: lazy initialisation, cuDNN autotuning, allocator growth
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def bench_stages(
    device: str = "auto",
    batches: Sequence[int] = DEFAULT_BATCHES,
    repeats: int = 3,
    folder: Path | None = None,
    progress: Callable[[str], None] | None = None,
    models: FullSizeModels | None = None,
) -> dict[str, Any]:
    """Time detect, ground and segment at each batch size; return figures as one JSON-able dict.

    ``frames_per_s`` of a stage is frames through that stage per second; ``pipeline_frames_per_s`` at a batch size is
    frames through detect + ground + segment back to back (1 / the sum of the per-frame times). ``models``
    replaces the full-size models (the tests pass tiny ones).
    """
    import tempfile
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # sam2 uses torch.jit.script, deprecated in torch

    runtime = Runtime.resolve(device, "auto")
    sync = torch.cuda.synchronize if runtime.cuda else (lambda: None)
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-models-") as tmp:
        if models is None:
            say("building full-size random-weight models …")
            models = build_full_size(Path(folder or tmp))
        rows: list[dict[str, Any]] = []
        for batch in batches:
            cfg = bench_config(models, runtime.device, batch)
            rows += _bench_batch(cfg, runtime, batch, repeats, sync, say)
    return {
        "device": runtime.device,
        "device_name": torch.cuda.get_device_name(0) if runtime.cuda else _cpu_name(),
        "dtype": runtime.dtype,
        "frame": [FRAME_W, FRAME_H],
        "architectures": ARCHITECTURES,
        "repeats": repeats,
        "stages": rows,
        "pipeline": _pipeline_rows(rows),
    }


def _build_stage(stage: str, cfg: Config, runtime: Runtime) -> Any:
    section = {"detect": cfg.models.detect, "ground": cfg.models.ground, "segment": cfg.models.segment}[stage]
    return backend_factory(stage, section.kind)(section, cfg.target, runtime)


def _bench_batch(
    cfg: Config, runtime: Runtime, batch: int, repeats: int, sync: Callable[[], None], say: Callable[[str], None]
) -> list[dict[str, Any]]:
    images = synthetic_frames(batch)
    anchors, parts = fixed_anchors(batch), fixed_parts(batch)
    calls = {
        "detect": lambda s: s.detect(images),
        "ground": lambda s: s.ground(images, anchors),
        "segment": lambda s: s.segment(images, parts),
    }
    rows = []
    for stage, call in calls.items():
        say(f"{stage}: batch {batch} …")
        obj = _build_stage(stage, cfg, runtime)
        times = _time_it(lambda obj=obj, call=call: call(obj), repeats, sync)
        median = statistics.median(times)
        rows.append(
            {
                "stage": stage,
                "batch": batch,
                "latency_ms": round(1000 * median, 2),
                "ms_per_frame": round(1000 * median / batch, 2),
                "frames_per_s": round(batch / median, 2),
            }
        )
        del obj
    return rows


def _pipeline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for batch in sorted({r["batch"] for r in rows}):
        per_frame_s = sum(r["ms_per_frame"] for r in rows if r["batch"] == batch) / 1000
        out.append({"batch": batch, "pipeline_frames_per_s": round(1 / per_frame_s, 2) if per_frame_s else None})
    return out


def _cpu_name() -> str:
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"
