"""``streamlabel bench tracking``: the tracker and the mask consistency check on a synthetic scene with known truth.

The scene (``tracking.scenes``) goes through the same per-stream code the Labeler uses (``StreamTracks``: anchor
tracker, part tracker, consistency check) with the default ``tracking`` config. Figures:

- jitter: RMS error (pixels, over every box coordinate) against truth of the detected boxes (raw) and of the
  tracker's smoothed boxes (tracked), over the rows that have a confirmed id; ``jitter_ratio`` = tracked / raw.
- id_switches: times a true object's confirmed id differs from the id it had before (CLEAR-MOT IDSW).
- fragmentations: times a true object, tracked before, is detected again without a confirmed id (its track was
  lost and restarted).
- flicker: a mask that is wrong (IoU < 0.5 with the true eye's mask: the segmenter took the other eye).
  ``flicker_rate_raw`` is the share of wrong masks among all masks; ``flicker_rate`` among the masks the
  consistency check lets through; ``flag_rate`` is the share of masks flagged (sent to review).
- ms_per_frame: wall time of the anchor and part tracker updates per frame (no mask checks), the fastest of
  ``repeats`` passes, with ``tracks_per_frame`` tracks held on average; ``cpu_ms_per_frame``: the same in CPU time
  of the benchmark's thread (less sensitive to other processes on a shared machine).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from streamlabel.config.tracking import TrackingConfig
from streamlabel.frames import Frame
from streamlabel.tracking.consistency import mask_iou
from streamlabel.tracking.scenes import Scene, SceneStep, TrackingSceneSpec, eye_mask
from streamlabel.tracking.streams import CONSISTENCY_KEY, StreamTracks
from streamlabel.tracking.tracker import SMOOTHED_KEY, UNCONFIRMED

log = logging.getLogger(__name__)

# A mask is wrong (counts as flicker) below this IoU with the true mask.
WRONG_MASK_IOU = 0.5
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_IMAGE = np.zeros((1, 1, 3), dtype=np.uint8)


@dataclass
class _Tally:
    """Running counts per family ("anchors", "parts")."""

    raw_sq: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tracked_sq: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    values: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_id: dict[int, int] = field(default_factory=dict)
    id_switches: int = 0
    fragmentations: int = 0
    masks: int = 0
    wrong: int = 0
    kept: int = 0
    kept_wrong: int = 0
    flagged: int = 0

    def boxes(self, family: str, rows, truth: dict[int, np.ndarray]) -> None:
        """Score one frame's tracked rows of one family."""
        ids, raw = rows.tracker_id, rows.xyxy.astype(np.float64)
        smoothed = np.asarray(rows.data[SMOOTHED_KEY], dtype=np.float64)
        for j, obj in enumerate(rows.data["truth"]):
            obj, tid = int(obj), int(ids[j])
            if tid == UNCONFIRMED:
                if obj in self.last_id:
                    self.fragmentations += 1
                    del self.last_id[obj]
                continue
            if obj in self.last_id and self.last_id[obj] != tid:
                self.id_switches += 1
            self.last_id[obj] = tid
            self.raw_sq[family] += float(((raw[j] - truth[obj]) ** 2).sum())
            self.tracked_sq[family] += float(((smoothed[j] - truth[obj]) ** 2).sum())
            self.values[family] += 4

    def rms(self, table: dict[str, float], families: tuple[str, ...]) -> float:
        n = sum(self.values[f] for f in families)
        return float(np.sqrt(sum(table[f] for f in families) / n)) if n else 0.0


def time_tracker(steps: list[SceneStep], frames: list[Frame], cfg: TrackingConfig, repeats: int) -> tuple[float, float]:
    """Milliseconds per frame of the anchor and part tracker updates, wall clock and this thread's CPU time: the
    fastest of ``repeats`` passes (the least disturbed by other processes on a shared machine)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        tracks = StreamTracks("bench", cfg)
        start, start_cpu = time.perf_counter(), time.thread_time()
        for frame, step in zip(frames, steps, strict=True):
            tracks.track_parts(frame, tracks.track_anchors(frame, step.anchors), step.parts)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.thread_time() - start_cpu)
    n = max(len(frames), 1)
    return 1000 * wall / n, 1000 * cpu / n


def bench_tracking(spec: TrackingSceneSpec | None = None, cfg: TrackingConfig | None = None, repeats: int = 3) -> dict:
    """Run the scene through the tracker and the consistency check; return the figures (see the module doc)."""
    scene = Scene(spec)
    spec = scene.spec
    cfg = cfg or TrackingConfig()
    steps = list(scene)
    frames = [Frame("bench", i, s.t, _T0 + timedelta(seconds=s.t), _IMAGE) for i, s in enumerate(steps)]
    tracks = StreamTracks("bench", cfg)
    tally = _Tally()
    tracks_seen = 0
    shape = (spec.height, spec.width)
    for frame, step in zip(frames, steps, strict=True):
        anchors = tracks.track_anchors(frame, step.anchors)
        parts = tracks.track_parts(frame, anchors, step.parts)
        tracks_seen += len(tracks.anchors.active_ids()) + len(tracks.parts.active_ids())
        flagged = tracks.check_masks(parts)
        tracks.adopt_references(parts, ~flagged)  # as if a validator accepted every mask not flagged
        tally.boxes("anchors", anchors, step.truth)
        tally.boxes("parts", parts, step.truth)
        for j, obj in enumerate(parts.data["truth"]):
            wrong = mask_iou(parts.mask[j], eye_mask(step.truth[int(obj)], shape)) < WRONG_MASK_IOU
            tally.masks += 1
            tally.wrong += int(wrong)
            if flagged[j]:
                tally.flagged += 1
            else:
                tally.kept += 1
                tally.kept_wrong += int(wrong)
        del parts.data[CONSISTENCY_KEY]
    n = len(steps)
    ms_wall, ms_cpu = time_tracker(steps, frames, cfg, repeats)
    both = ("anchors", "parts")
    raw, tracked = tally.rms(tally.raw_sq, both), tally.rms(tally.tracked_sq, both)
    ratio = {f: tally.rms(tally.tracked_sq, (f,)) / max(tally.rms(tally.raw_sq, (f,)), 1e-9) for f in both}
    return {
        "frames": n,
        "seed": spec.seed,
        "jitter_raw_px": round(raw, 3),
        "jitter_tracked_px": round(tracked, 3),
        "jitter_ratio": round(tracked / raw, 4) if raw else 0.0,
        "jitter_ratio_anchors": round(ratio["anchors"], 4),
        "jitter_ratio_parts": round(ratio["parts"], 4),
        "id_switches": tally.id_switches,
        "fragmentations": tally.fragmentations,
        "flicker_rate_raw": round(float(tally.wrong) / max(tally.masks, 1), 4),
        "flicker_rate": round(float(tally.kept_wrong) / max(tally.kept, 1), 4),
        "flag_rate": round(tally.flagged / max(tally.masks, 1), 4),
        "ms_per_frame": round(ms_wall, 3),
        "cpu_ms_per_frame": round(ms_cpu, 3),
        "tracks_per_frame": round(tracks_seen / n, 2),
    }
