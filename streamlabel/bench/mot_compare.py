"""``streamlabel bench tracking --compare``: our tracker against SORT, ByteTrack and OC-SORT on MOT sequences.

Every tracker gets the same seeded detections (``mot.detect``) of every sequence and noise seed; each tracker's
output rows that carry an id are scored against the truth (``mot_metrics``), counts summed over all runs. The boxes
scored are the detections themselves for every tracker (not smoothed ones), so the figures differ only by which
rows get which id. SORT, ByteTrack and OC-SORT come from roboflow's ``trackers`` package (the optional ``bench``
extra), each with its defaults at the sequence's frame rate; without the package only our tracker is scored.
Time per frame is the wall (and thread CPU) time of the ``update`` calls alone, averaged over all frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from importlib.util import find_spec

import numpy as np
import supervision as sv

from streamlabel.bench.mot import DetectorNoise, MotSequence, bundled_sequences, detect
from streamlabel.bench.mot_metrics import MotCounts, evaluate
from streamlabel.bench.mot_scenes import StreetSpec, synthesize
from streamlabel.config.tracking import TrackingConfig
from streamlabel.tracking.tracker import UNCONFIRMED, Tracker, TrackerConfig

log = logging.getLogger(__name__)

OURS = "streamlabel"
OURS_DEFAULTS = "streamlabel-defaults"
THEIRS = ("sort", "bytetrack", "ocsort")
# Ours with the pipeline's defaults (low_score 0.5: this detector passes boxes down to 0.1, as ByteTrack and OC-SORT
# expect, and below 0.5 a box only extends a track). OURS_DEFAULTS is the same unless ``compare`` gets a config.
BENCH_CONFIG = TrackingConfig()
MISSING_TRACKERS = (
    "SORT, ByteTrack and OC-SORT need roboflow's trackers package: pip install 'streamlabel[bench]' "
    "(only our tracker was scored)"
)
STREET_SEEDS = (0, 1, 2)
NOISE_SEEDS = (0, 1, 2)

# One frame in, the rows with an id out: (detections, t in seconds) -> detections.
Update = Callable[[sv.Detections, float], sv.Detections]


def trackers_available() -> bool:
    """True when roboflow's ``trackers`` package is installed."""
    return find_spec("trackers") is not None


def make_tracker(name: str, fps: float, config: TrackingConfig | None = None) -> Update:
    """A fresh tracker's update function: ``streamlabel`` (ours, from ``config``, by default ``BENCH_CONFIG``),
    ``streamlabel-defaults`` (ours with the default config), ``sort``, ``bytetrack`` or ``ocsort`` (``trackers``
    defaults at ``fps``).

    Raises:
        ValueError: an unknown name (lists the known ones).
    """
    if name in (OURS, OURS_DEFAULTS):
        chosen = TrackingConfig() if name == OURS_DEFAULTS else config or BENCH_CONFIG
        ours = Tracker(TrackerConfig.from_config(chosen))
        return lambda detections, t: ours.update(detections, t)
    if name not in THEIRS:
        raise ValueError(f"unknown tracker {name!r}: choose one of {(OURS, OURS_DEFAULTS, *THEIRS)}")
    import trackers

    classes = {"sort": trackers.SORTTracker, "bytetrack": trackers.ByteTrackTracker, "ocsort": trackers.OCSORTTracker}
    theirs = classes[name](frame_rate=fps)
    return lambda detections, t: theirs.update(detections)


def default_sequences() -> list[MotSequence]:
    """The bundled TUD sequences (when ``motmetrics`` is installed) and three generated streets."""
    return bundled_sequences() + [synthesize(StreetSpec(seed=seed)) for seed in STREET_SEEDS]


def run_tracker(update: Update, detections: Sequence[sv.Detections], fps: float) -> tuple[list, float, float]:
    """Feed ``detections`` (one per frame) to ``update``; return per frame ``(ids, xyxy)`` of the rows with an id,
    and the wall and thread CPU seconds spent in ``update``."""
    out, wall_s, cpu_s = [], 0.0, 0.0
    for k, frame in enumerate(detections):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = update(frame, k / fps)
        wall_s += time.perf_counter() - start
        cpu_s += time.thread_time() - start_cpu
        ids = np.asarray(result.tracker_id if result.tracker_id is not None else [], dtype=int).reshape(-1)
        keep = ids != UNCONFIRMED
        out.append((ids[keep], np.asarray(result.xyxy, dtype=np.float64).reshape(-1, 4)[keep]))
    return out, wall_s, cpu_s


def compare(
    sequences: Sequence[MotSequence] | None = None,
    noise_seeds: Sequence[int] = NOISE_SEEDS,
    noise: DetectorNoise | None = None,
    names: Sequence[str] | None = None,
    config: TrackingConfig | None = None,
) -> dict:
    """Score each tracker of ``names`` (default: ours twice, see ``make_tracker``, and, when installed, SORT,
    ByteTrack and OC-SORT) on every sequence and noise seed; see the module doc. ``skipped`` says why SORT,
    ByteTrack and OC-SORT are missing."""
    sequences = list(sequences) if sequences is not None else default_sequences()
    available = trackers_available()
    names = list(names) if names is not None else [OURS, OURS_DEFAULTS, *(THEIRS if available else ())]
    totals = {name: MotCounts() for name in names}
    per_sequence: dict[str, dict[str, MotCounts]] = {name: {} for name in names}
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    frames = 0
    for sequence in sequences:
        truth = [(f.ids, f.xyxy) for f in sequence.frames]
        for seed in noise_seeds:
            detections = detect(sequence, seed, noise)
            frames += len(detections)
            for name in names:
                tracked, wall_s, cpu_s = run_tracker(make_tracker(name, sequence.fps, config), detections, sequence.fps)
                counts = evaluate(truth, tracked)
                totals[name] += counts
                per_sequence[name][sequence.name] = per_sequence[name].get(sequence.name, MotCounts()) + counts
                wall[name] += wall_s
                cpu[name] += cpu_s
    result = {
        "sequences": [{"name": s.name, "frames": len(s.frames), "true_boxes": s.boxes} for s in sequences],
        "noise_seeds": list(noise_seeds),
        "frames": frames,
        "trackers": {
            name: _figures(totals[name], 1000 * wall[name] / max(frames, 1), 1000 * cpu[name] / max(frames, 1))
            | {"per_sequence": {s: _figures(c) for s, c in per_sequence[name].items()}}
            for name in names
        },
    }
    if not available:
        result["skipped"] = MISSING_TRACKERS
    return result


def _figures(counts: MotCounts, ms_per_frame: float | None = None, cpu_ms_per_frame: float | None = None) -> dict:
    figures: dict = {
        "idf1": round(counts.idf1, 4),
        "mota": round(counts.mota, 4),
        "id_switches": counts.id_switches,
        "misses": counts.misses,
        "false_positives": counts.false_positives,
        "true_boxes": counts.true_boxes,
    }
    if ms_per_frame is not None:
        figures |= {"ms_per_frame": round(ms_per_frame, 3), "cpu_ms_per_frame": round(cpu_ms_per_frame or 0.0, 3)}
    return figures
