"""``streamlabel bench student``: the student against detect + ground + segment on the same frames, in one run.

The production architectures (YOLO11m, Grounding DINO tiny, SAM2.1 Hiera tiny: ``bench.stages.build_full_size``) and
the student's (YOLO11n-seg, what ``streamlabel train`` starts from) are built with random weights and loaded through
the daemon's own paths (``Stages.build`` with ``models.student`` set). Each timed call gets the same batch of frames;
ground and segment get one dog per frame and two eyes per dog (``bench.stages``), so their cost does not depend on
what random weights find. The student's head is set to find parts everywhere (``tiny.student.FINDING_BIAS``), so its
time includes the mask post-processing of ``models.student.max_det`` finds per frame: a trained student that finds
fewer costs a little less.

Figures: ms per frame of each, ``ratio`` (pipeline time / student time), and the gate's break-even: with
``models.student.gate`` every frame pays for the student, and each frame the student closes saves ground + segment,
so the gate saves time once more than ``gate_break_even_closed`` of the frames are closed. What the gate costs in
recall depends on the trained student, not on its speed: measure it on the gold set (docs/student.md).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamlabel.bench.stages import (
    ARCHITECTURES,
    FRAME_H,
    FRAME_W,
    FullSizeModels,
    bench_config,
    build_full_size,
    cpu_name,
    fixed_anchors,
    fixed_parts,
    synthetic_frames,
    time_calls,
)
from streamlabel.config import Config
from streamlabel.stages.base import Runtime

log = logging.getLogger(__name__)

STUDENT_ARCH = "yolo11n-seg"
STAGES = ("detect", "ground", "segment")


def student_config(models: FullSizeModels, student: Path, device: str, frames: int, imgsz: int) -> Config:
    """``bench.stages.bench_config`` with the student set (batch ``frames``, validation off)."""
    data = bench_config(models, device, frames).model_dump(by_alias=True)
    data["models"]["student"] = {"model": str(student), "imgsz": imgsz}
    return Config.model_validate(data)


def bench_student(
    device: str = "auto",
    frames: int = 8,
    repeats: int = 3,
    imgsz: int = 640,
    models: FullSizeModels | None = None,
    student: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the student and detect + ground + segment on one batch of ``frames`` frames; one JSON-able dict.

    ``models`` and ``student`` replace the full-size random-weight models (the tests pass tiny ones).
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
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-student-") as tmp:
        if models is None:
            say("building full-size random-weight models …")
            models = build_full_size(Path(tmp))
        if student is None:
            from streamlabel.tiny.student import build_tiny_student

            student = build_tiny_student(Path(tmp) / "student", arch=STUDENT_ARCH)
        cfg = student_config(models, student, runtime.device, frames, imgsz)
        per_stage = _time_stages(cfg, runtime, frames, repeats, sync, say)
    pipeline_ms = sum(per_stage[s] for s in STAGES)
    student_ms = per_stage["student"]
    return {
        "device": runtime.device,
        "device_name": torch.cuda.get_device_name(0) if runtime.cuda else cpu_name(),
        "dtype": runtime.dtype,
        "frame": [FRAME_W, FRAME_H],
        "frames": frames,
        "repeats": repeats,
        "student_imgsz": imgsz,
        "architectures": {s: ARCHITECTURES[s] for s in STAGES}
        | {"student": f"{STUDENT_ARCH} (random weights, 1 class)"},
        "ms_per_frame": {k: round(v, 2) for k, v in per_stage.items()},
        "pipeline_ms_per_frame": round(pipeline_ms, 2),
        "ratio": round(pipeline_ms / student_ms, 2),
        "gate_break_even_closed": round(student_ms / (per_stage["ground"] + per_stage["segment"]), 3),
    }


def _time_stages(
    cfg: Config, runtime: Runtime, frames: int, repeats: int, sync: Callable[[], None], say: Callable[[str], None]
) -> dict[str, float]:
    """Median ms per frame of each stage and of the student, each called on the same batch."""
    from streamlabel.pipeline import Stages

    images = synthetic_frames(frames)
    anchors, parts = fixed_anchors(frames), fixed_parts(frames)
    say("loading the stages and the student …")
    stages = Stages.build(cfg, runtime)
    assert stages.student is not None  # student_config sets it
    calls: dict[str, Callable[[], Any]] = {
        "student": lambda: stages.student.finder.find(images),  # type: ignore[union-attr]  (unguarded: errors raise)
        "detect": lambda: stages.detector.detect(images),
        "ground": lambda: stages.grounder.ground(images, anchors),
        "segment": lambda: stages.segmenter.segment(images, parts),
    }
    out = {}
    for name, call in calls.items():
        say(f"{name}: {frames} frames × {repeats} …")
        out[name] = 1000 * statistics.median(time_calls(call, repeats, sync)) / frames
    return out
