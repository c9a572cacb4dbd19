"""``streamlabel bench store``: frames written per second with ``store.durability`` 'process' and 'power'.

The same synthetic frames (a 1280×720 noise image, two accepted elliptic parts) go into two fresh stores on the
same file system, in alternating blocks so that both settings see the same disk state; every write is the real
``DatasetStore.write`` (JPEG, label file, manifest rows and outbox event in one transaction).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from streamlabel.frames import ANCHOR_INDEX_KEY, POLYGON_KEY, STATUS_KEY, VERDICT_KEY, Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.store.dataset import DatasetStore

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = ("process", "power")
BLOCKS = 4  # alternating blocks per setting


def synthetic_result(seq: int, size: tuple[int, int] = (720, 1280)) -> FrameResult:
    """One frame of noise with a dog box and two accepted eye polygons."""
    h, w = size
    image = np.random.default_rng(seq).integers(0, 255, (h, w, 3), dtype=np.uint8)
    polygons = np.empty(2, dtype=object)
    boxes = np.zeros((2, 4), np.float32)
    for k, cx in enumerate((w * 0.45, w * 0.55)):
        poly = cv2.ellipse2Poly((int(cx), h // 3), (14, 9), 0, 0, 360, 20)[:-1].astype(np.float32)
        polygons[k], boxes[k] = poly, [*poly.min(axis=0), *poly.max(axis=0)]
    verdicts = np.empty(2, dtype=object)
    verdicts[:] = [Verdict(True, 0.95, {"mask_quality": True}, "ok", "bench", 0.0, "stated")] * 2
    parts = sv.Detections(
        xyxy=boxes,
        confidence=np.full(2, 0.6),
        class_id=np.zeros(2, int),
        data={
            ANCHOR_INDEX_KEY: np.zeros(2, int),
            POLYGON_KEY: polygons,
            STATUS_KEY: np.array(["accepted", "accepted"], dtype=object),
            VERDICT_KEY: verdicts,
        },
    )
    anchors = sv.Detections(
        xyxy=np.array([[w * 0.3, h * 0.1, w * 0.7, h * 0.8]], np.float32),
        confidence=np.array([0.9]),
        class_id=np.array([16]),
        data={"class_name": np.array(["dog"])},
    )
    frame = Frame("bench", seq, seq * 0.5, T0 + timedelta(seconds=seq * 0.5), image)
    return FrameResult(frame, anchors, parts)


def bench_store(frames: int = 80, folder: Path | None = None) -> dict[str, Any]:
    """Write ``frames`` frames per setting into two stores under ``folder`` (default: the system temp folder)."""
    results = [synthetic_result(i) for i in range(frames)]
    seconds = dict.fromkeys(SETTINGS, 0.0)
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-store-", dir=folder) as tmp:
        stores = {s: DatasetStore(Path(tmp) / s, ["eye"], durability=s) for s in SETTINGS}
        for store in stores.values():
            store.manifest.record_run("bench", {"bench": True}, {})
        block = max(1, frames // BLOCKS)
        for start in range(0, frames, block):
            for setting, store in stores.items():
                began = time.perf_counter()
                for result in results[start : start + block]:
                    store.write(result, "bench")
                seconds[setting] += time.perf_counter() - began
        for store in stores.values():
            store.close()
        where = str(Path(tmp).parent)
    out: dict[str, Any] = {"frames": frames, "folder": where, "settings": {}}
    for setting in SETTINGS:
        out["settings"][setting] = {
            "frames_per_s": round(frames / seconds[setting], 2),
            "ms_per_frame": round(1000 * seconds[setting] / frames, 2),
        }
    out["power_over_process_time"] = round(seconds["power"] / seconds["process"], 3)
    return out
