"""``streamlabel bench stages``: per-stage latency and throughput of full-size architectures with random weights.

The production architectures (YOLO11m, Grounding DINO tiny, SAM2.1 Hiera tiny) are built from their configs with
random weights, saved, and loaded back through the stages' real loading paths, so the figures are honest speeds of
the real code without any download. Each stage gets fixed inputs, one dog per frame and two eyes per dog, so its
time does not depend on what random weights happen to find.

The validate stage is timed on CUDA (or when asked) with a 4B-class random-weight VLM through the in-process
``transformers`` backend: the figure is what one GPU spends per verdict. Production usually asks an Ollama server
instead; that is I/O from the daemon's side and runs requests ``models.validate.concurrency`` at a time. The
in-process backend generates one answer at a time, so its cost per candidate does not depend on the batch size and
it is timed once, on one frame with two eyes, with answers of ``VLM_ANSWER_TOKENS`` tokens at most.
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

from streamlabel.bench.variants import BASELINE, apply_overrides
from streamlabel.config import Config
from streamlabel.stages.base import Candidate, Runtime, backend_factory

log = logging.getLogger(__name__)

FRAME_W, FRAME_H = 1280, 720  # a typical pet-camera frame
DOG_BOX = (380.0, 160.0, 900.0, 640.0)  # one dog per frame, in pixels
EYE_BOXES = ((520.0, 260.0, 560.0, 290.0), (640.0, 262.0, 680.0, 292.0))  # two eyes inside it
DEFAULT_BATCHES = (1, 4, 16)
VLM_ANSWER_TOKENS = 128  # a verdict (observation, comparison, five checks, decision, confidence) is about 100 tokens
ARCHITECTURES = {
    "detect": "yolo11m (random weights)",
    "ground": "grounding-dino-tiny (random weights)",
    "segment": "sam2.1-hiera-tiny (random weights)",
    "validate": "llava: clip-vit-l/14-336 + phi-3-mini-sized decoder, 4.1B (random weights)",
}


@dataclass(frozen=True)
class FullSizeModels:
    """Saved random-weight models of the production architectures."""

    yolo: Path
    grounding_dino: Path
    sam2_config: Path
    sam2_checkpoint: Path
    vlm: Path | None = None  # a transformers image-text-to-text folder; None: validate is not timed


def build_full_size(folder: Path, detector: str = "yolo11m", vlm_runtime: Runtime | None = None) -> FullSizeModels:
    """Build and save YOLO11m, Grounding DINO tiny and SAM2.1 Hiera tiny with random weights under ``folder``.

    With ``vlm_runtime`` the 4B-class VLM is built too, on that device and in that dtype (8 GB in bfloat16).
    """
    from streamlabel.tiny.gdino import build_random_grounding_dino
    from streamlabel.tiny.sam2 import build_random_sam2
    from streamlabel.tiny.vlm import build_tiny_vlm
    from streamlabel.tiny.yolo import build_tiny_yolo

    yolo = build_tiny_yolo(folder / "yolo", arch=detector)
    gdino = build_random_grounding_dino(folder / "grounding-dino", full_size=True)
    sam_cfg, sam_ckpt = build_random_sam2(folder / "sam2", full_size=True)
    vlm = None
    if vlm_runtime is not None:
        vlm = build_tiny_vlm(folder / "vlm", full_size=True, device=vlm_runtime.device, dtype=vlm_runtime.dtype)
    return FullSizeModels(yolo, gdino, sam_cfg, sam_ckpt, vlm)


def bench_config(models: FullSizeModels, device: str, batch: int, overrides: dict[str, Any] | None = None) -> Config:
    """A config that loads the saved models through the production paths, batching ``batch`` at a time, with a
    variant's ``overrides`` (dotted keys, ``bench.variants``) applied."""
    raw = {
        "models": {
            "device": device,
            "batch_size": batch,
            "detect": {"weights": str(models.yolo), "imgsz": 640, "max_det": 10},
            "ground": {"model": str(models.grounding_dino), "batch_size": batch},
            "segment": {
                "config": str(models.sam2_config),
                "checkpoint": str(models.sam2_checkpoint),
                "batch_size": batch,
            },
        },
        "target": {"validation": {"enabled": False}},
    }
    return Config.model_validate(apply_overrides(raw, overrides or {}))


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


def fixed_candidates(n: int) -> list[Candidate]:
    """The eyes of ``n`` frames as validator candidates, each with an elliptic mask filling its box."""
    import cv2

    out = []
    for image, parts in zip(synthetic_frames(n), fixed_parts(n), strict=True):
        for row in range(len(parts)):
            x1, y1, x2, y2 = (int(v) for v in parts.xyxy[row])
            mask = np.zeros((1, FRAME_H, FRAME_W), np.uint8)
            cv2.ellipse(mask[0], ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, 1, -1)
            part = parts[row : row + 1]
            part.mask = mask.astype(bool)
            out.append(Candidate(image, part, np.array(DOG_BOX, np.float32), "dog", "eye"))
    return out


def time_calls(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn``, each ended by ``sync`` (CUDA), after one untimed warm-up call."""
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
    vlm: bool | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Time detect, ground and segment at each batch size for each variant, and validate once; one JSON-able dict.

    ``frames_per_s`` of a stage is frames through that stage per second; ``pipeline_frames_per_s`` at a batch size is
    frames through detect + ground + segment back to back (1 / the sum of the per-frame times), and
    ``with_validate_frames_per_s`` adds the validator's time per frame when it was timed. ``variants`` maps a name to
    config overrides (``bench.variants``; the first is the baseline of every ``speedup``); each variant builds its
    stages once and times them at every batch size. ``vlm`` builds and times the 4B-class VLM (None: on CUDA only).
    ``models`` replaces the full-size models (the tests pass tiny ones, and then validate is timed when
    ``models.vlm`` is set).
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
    variants = variants or {BASELINE: {}}
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-models-") as tmp:
        if models is None:
            with_vlm = runtime.cuda if vlm is None else vlm
            say("building full-size random-weight models" + (" (4B VLM included) …" if with_vlm else " …"))
            models = build_full_size(Path(folder or tmp), vlm_runtime=runtime if with_vlm else None)
        rows: list[dict[str, Any]] = []
        for name, overrides in variants.items():
            cfg = bench_config(models, runtime.device, max(batches), overrides)
            rows += _bench_variant(name, cfg, batches, repeats, sync, say)
        validate = _bench_validate(models.vlm, runtime, repeats, sync, say) if models.vlm else None
    return {
        "device": runtime.device,
        "device_name": torch.cuda.get_device_name(0) if runtime.cuda else cpu_name(),
        "dtype": runtime.dtype,
        "frame": [FRAME_W, FRAME_H],
        "architectures": ARCHITECTURES,
        "repeats": repeats,
        "variants": variants,
        "stages": rows,
        "validate": validate,
        "pipeline": _pipeline_rows(rows, validate),
    }


def _build_stage(stage: str, cfg: Config, runtime: Runtime) -> Any:
    section = {"detect": cfg.models.detect, "ground": cfg.models.ground, "segment": cfg.models.segment}[stage]
    return backend_factory(stage, section.kind)(section, cfg.target, runtime)


def _bench_variant(
    name: str,
    cfg: Config,
    batches: Sequence[int],
    repeats: int,
    sync: Callable[[], None],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Build each stage once under ``cfg`` (its own dtype and compile mode) and time it at every batch size."""
    runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype, cfg.models.compile)
    rows = []
    for stage in ("detect", "ground", "segment"):
        say(f"{name}: building {stage} …")
        obj = _build_stage(stage, cfg, runtime)
        for batch in batches:
            say(f"{name}: {stage} at batch {batch} …")
            inputs = _inputs(stage, batch)
            times = time_calls(lambda obj=obj, stage=stage, inputs=inputs: _call(obj, stage, inputs), repeats, sync)
            median = statistics.median(times)
            rows.append(
                {
                    "variant": name,
                    "stage": stage,
                    "batch": batch,
                    "latency_ms": round(1000 * median, 2),
                    "ms_per_frame": round(1000 * median / batch, 2),
                    "frames_per_s": round(batch / median, 2),
                }
            )
        del obj
    return rows


def _inputs(stage: str, batch: int) -> tuple[Any, ...]:
    """Fixed inputs of one call: frames, plus one dog per frame (ground) or two eyes per dog (segment)."""
    images = synthetic_frames(batch)
    if stage == "detect":
        return (images,)
    return (images, fixed_anchors(batch) if stage == "ground" else fixed_parts(batch))


def _call(obj: Any, stage: str, inputs: tuple[Any, ...]) -> Any:
    return getattr(obj, stage)(*inputs)


def _bench_validate(
    folder: Path, runtime: Runtime, repeats: int, sync: Callable[[], None], say: Callable[[str], None]
) -> dict[str, Any]:
    """Verdicts for one frame's two eyes through the in-process transformers backend, ``repeats`` times."""
    from streamlabel.config import TargetConfig, ValidateModelConfig
    from streamlabel.stages.validate import TransformersValidator

    say("validate: loading the VLM …")
    cfg = ValidateModelConfig(kind="transformers", model=str(folder), max_new_tokens=VLM_ANSWER_TOKENS)
    validator = TransformersValidator(cfg, TargetConfig(), runtime)
    candidates = fixed_candidates(1)
    say(f"validate: {len(candidates)} candidates …")
    counts: list[int] = []

    def judge() -> None:
        start = validator.tokens_generated
        validator.validate(candidates)
        counts.append(validator.tokens_generated - start)

    times = time_calls(judge, repeats, sync)
    tokens = sum(counts[1:])  # the first call is time_calls' untimed warm-up
    median = statistics.median(times)
    total = sum(times)
    return {
        "stage": "validate",
        "backend": "transformers",
        "candidates_per_frame": len(candidates),
        "max_new_tokens": VLM_ANSWER_TOKENS,
        "latency_ms": round(1000 * median, 2),
        "ms_per_frame": round(1000 * median, 2),
        "ms_per_candidate": round(1000 * median / len(candidates), 2),
        "frames_per_s": round(1 / median, 3),
        "tokens_per_candidate": round(tokens / (repeats * len(candidates)), 1),
        "tokens_per_s": round(tokens / total, 1) if total else None,
    }


def _pipeline_rows(rows: list[dict[str, Any]], validate: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Detect + ground + segment per variant and batch size; ``speedup`` against the first variant's rate."""
    out: list[dict[str, Any]] = []
    variants = list(dict.fromkeys(r.get("variant", BASELINE) for r in rows))
    baseline: dict[int, float] = {}
    for variant in variants:
        mine = [r for r in rows if r.get("variant", BASELINE) == variant]
        for batch in sorted({r["batch"] for r in mine}):
            per_frame_s = sum(r["ms_per_frame"] for r in mine if r["batch"] == batch) / 1000
            rate = 1 / per_frame_s if per_frame_s else None
            row: dict[str, Any] = {"batch": batch, "pipeline_frames_per_s": _figure(rate) if rate else None}
            if len(variants) > 1:
                row = {"variant": variant, **row}
                baseline.setdefault(batch, rate or 0.0)
                row["speedup"] = round(rate / baseline[batch], 3) if rate and baseline[batch] else None
            if validate is not None:
                row["with_validate_frames_per_s"] = round(1 / (per_frame_s + validate["ms_per_frame"] / 1000), 3)
            out.append(row)
    return out


def _figure(rate: float) -> float:
    """Two decimals, or three significant digits below 1 (a CPU's 0.0512 frames/s is not 0.05)."""
    return round(rate, 2) if rate >= 1 else float(f"{rate:.3g}")


def cpu_name() -> str:
    """The processor's model name and core count (what a CPU figure was measured on)."""
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
