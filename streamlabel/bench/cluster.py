"""``streamlabel bench cluster``: the Ray path against the in-process runner on the same frames, in one run.

Stages are stand-ins that cost a fixed time per image (``work_ms``, a sleep, as a GPU stage frees the CPU) and find
nothing, so the figures are the engine's: per-frame overhead of the Ray path (``work_ms=0``), frames/s with 1 and 2
labeler actors, and what a frame costs in the object store as an array and as JPEG. Rates are measured between the
first and the last stored frame, so actor start-up (model loading) is not counted.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from streamlabel.config import Config
from streamlabel.frames import Frame, FrameResult
from streamlabel.pipeline import Stages
from streamlabel.store.dataset import DatasetStore

FPS = 5.0


class IdleDetector:
    """Finds nothing after ``work_s`` per image."""

    model_id = "bench-idle"

    def __init__(self, work_s: float) -> None:
        self.work_s = work_s

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        if self.work_s:
            time.sleep(self.work_s * len(images))
        return [sv.Detections.empty() for _ in images]


class IdleGrounder:
    model_id = "bench-idle"

    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]:
        return [sv.Detections.empty() for _ in images]


class IdleSegmenter:
    model_id = "bench-idle"

    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]:
        return list(parts)


def idle_stages(cfg: Config, work_s: float = 0.0) -> Stages:
    """Stages that cost ``work_s`` per image and find nothing (a labeler actor builds them by reference)."""
    return Stages(IdleDetector(work_s), IdleGrounder(), IdleSegmenter(), None)


def _clips(folder: Path, streams: int, seconds: float) -> dict[str, str]:
    from streamlabel.tiny.scene import SceneSpec, write_clip

    out = {}
    for i in range(streams):
        path = folder / f"cam{i}.mp4"
        write_clip(SceneSpec(seconds=seconds, seed=i), path)
        out[f"cam{i}"] = str(path)
    return out


def _config(clips: dict[str, str], root: Path, cluster: dict[str, Any] | None) -> Config:
    data: dict[str, Any] = {
        "streams": {name: {"url": url, "fps": FPS, "queue_size": 16} for name, url in clips.items()},
        "models": {"batch_size": 4},
        "store": {"path": str(root)},
        "review": {"address": None},
    }
    if cluster is not None:
        data["cluster"] = cluster
    return Config.model_validate(data)


def _timed_run(cfg: Config, root: Path, work_s: float) -> dict[str, Any]:
    """Run ``cfg`` (in-process, or on the cluster when it has ``cluster:``); frames/s between the first and last
    judged frame."""
    from streamlabel.daemon.runner import Runner

    stamps: list[float] = []
    store = DatasetStore(root, ["eye"])

    def seen(_result: FrameResult, _stored: Any) -> None:
        stamps.append(time.perf_counter())

    factory = functools.partial(idle_stages, work_s=work_s)
    try:
        if cfg.cluster is None:
            runner = Runner(cfg, factory(cfg), store, on_result=seen)
        else:
            from streamlabel.cluster import ClusterRunner

            runner = ClusterRunner(cfg, factory(cfg), store, on_result=seen, stages_factory=factory)
        runner.run_until_done()
    finally:
        store.close()
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    fps = (len(stamps) - 1) / span if span > 0 else float("nan")
    return {"frames": len(stamps), "frames_per_s": round(fps, 2), "ms_per_frame": round(1000 / fps, 2)}


def transport_costs(frame: np.ndarray) -> dict[str, Any]:
    """Bytes and milliseconds to pass ``frame`` through the object store as an array and as JPEG (put + get,
    JPEG encode + decode included)."""
    import ray

    from streamlabel.cluster.transport import pack, payload_bytes, unpack
    from streamlabel.streams.clock import StreamClock

    f = Frame("bench", 0, 0.0, StreamClock().utc(0.0), frame)
    out: dict[str, Any] = {"shape": list(frame.shape)}
    for transport in ("array", "jpeg"):
        start, n = time.perf_counter(), 20
        for _ in range(n):
            packed = pack(f, transport)
            unpack(ray.get(ray.put(packed)))
        out[transport] = {
            "bytes": payload_bytes(pack(f, transport)),
            "ms": round((time.perf_counter() - start) * 1000 / n, 2),
        }
    return out


def bench_cluster(streams: int = 2, seconds: float = 8.0, work_ms: float = 20.0, gpus: float = 0.0) -> dict[str, Any]:
    """The figures of ``streamlabel bench cluster`` (starts a local Ray with 3 CPUs; ``gpus`` per labeler)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=3, include_dashboard=False, configure_logging=False)
        started = True
    result: dict[str, Any] = {"streams": streams, "sampled_frames": int(streams * seconds * FPS), "work_ms": work_ms}
    try:
        with tempfile.TemporaryDirectory(prefix="streamlabel-bench-cluster-") as tmp:
            folder = Path(tmp)
            clips = _clips(folder, streams, seconds)
            runs = {"in_process_idle": (None, 0.0), "ray_idle": (1, 0.0)}
            runs |= {"in_process_work": (None, work_ms / 1000), "ray_1_labeler": (1, work_ms / 1000)}
            runs |= {"ray_2_labelers": (2, work_ms / 1000)}
            for name, (labelers, work_s) in runs.items():
                cluster = None
                if labelers is not None:
                    cluster = {"labelers": labelers, "reader_num_cpus": 0, "labeler_num_gpus": gpus}
                cfg = _config(clips, folder / name, cluster)
                result[name] = _timed_run(cfg, folder / name, work_s)
            image = cv2.resize(_first_frame(clips["cam0"]), (1920, 1080))
            result["transport_1080p"] = transport_costs(image)
    finally:
        if started:
            ray.shutdown()
    idle, ray_idle = result["in_process_idle"], result["ray_idle"]
    result["overhead_ms_per_frame"] = round(ray_idle["ms_per_frame"] - idle["ms_per_frame"], 2)
    result["ray_over_in_process_time"] = round(ray_idle["ms_per_frame"] / idle["ms_per_frame"], 2)
    result["two_over_one_labeler"] = round(
        result["ray_2_labelers"]["frames_per_s"] / result["ray_1_labeler"]["frames_per_s"], 2
    )
    return result


def _first_frame(path: str) -> np.ndarray:
    import av

    with av.open(path) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")
