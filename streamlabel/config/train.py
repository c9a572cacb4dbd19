"""``train``: training a student from the dataset (docs/training.md), by hand or on a schedule in the daemon."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamlabel.config.base import _Model

PromoteMetric = Literal["mask_map50_95", "mask_map50", "box_map50_95", "box_map50"]


class TrainConfig(_Model):
    """The student: what ``streamlabel train`` starts from, where it runs, and when the daemon retrains it."""

    model: str = Field(
        "yolo11n-seg.pt",
        description="What training starts from: Ultralytics YOLO-seg weights (.pt: a local path or a file in "
        "Ultralytics' weights_dir; nothing is downloaded) or an architecture (.yaml, e.g. yolo11n-seg.yaml: random "
        "init, for machines without the weights).",
    )
    epochs: int = Field(
        50, ge=1, le=1000, description="Passes over the dataset. More fits better, at the cost of time per run."
    )
    imgsz: int = Field(
        640,
        ge=32,
        le=4096,
        description="Training and evaluation image size in pixels (Ultralytics rounds it to a multiple of 32). "
        "Larger finds small parts (eyes) better, at the cost of memory and time.",
    )
    batch: int = Field(
        16, ge=1, le=1024, description="Images per step. Larger steps are steadier and need more memory."
    )
    workers: int = Field(
        2,
        ge=0,
        le=64,
        description="Dataloader processes of a training run. More feed a GPU faster, at the cost of CPU cores and "
        "memory taken from the labeler; 0 loads in the training process.",
    )
    device: str = Field(
        "cpu",
        description="Where training runs: cpu, or a CUDA device (0, 1, cuda:1). Process priority does not schedule "
        "a GPU: give training another GPU than the labeler, or set max_gpu_memory_gb when it shares one.",
    )
    max_gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Memory budget of a training run on a GPU it shares with the labeler (torch's per-process "
        "memory fraction; a run that needs more fails instead of starving the labeler). Higher allows larger "
        "batches and images at the cost of the labeler's headroom. Unset: no cap.",
    )
    every_labels: int | None = Field(
        None,
        ge=1,
        description="The daemon starts a training run after this many new accepted labels since the last run. "
        "Lower retrains sooner on fresher data, at the cost of more runs; unset (and every_s unset): never.",
    )
    every_s: float | None = Field(
        None,
        ge=600,
        description="The daemon starts a training run when the last one started this many seconds ago (and new "
        "accepted labels arrived since). Lower retrains sooner; unset (and every_labels unset): never.",
    )
    gold_guard_s: float = Field(
        60.0,
        ge=0,
        description="Frames of a stream within this many seconds of one of its gold-set (audit) frames are left "
        "out of training too: they are near-copies of the gold frame. Higher keeps the gold set more independent "
        "of training, at the cost of training frames.",
    )
    promote_metric: PromoteMetric = Field(
        "mask_map50_95", description="The gold-set figure a new student must beat the current one on to be promoted."
    )
    min_improvement: float = Field(
        0.0,
        ge=0,
        le=1,
        description="A new student is promoted only when promote_metric beats the current student's by more than "
        "this. Higher avoids swapping students on noise of a small gold set, at the cost of slower uptake.",
    )
    timeout_s: float = Field(
        6 * 3600.0,
        ge=60,
        description="A scheduled training run still going after this many seconds is stopped and counted as failed. "
        "Higher allows longer runs; a hung run blocks the next one until then.",
    )
