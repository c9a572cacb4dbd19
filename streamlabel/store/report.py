"""Figures of a store for ``streamlabel report dataset``: what the dataset holds, how much of it is distinct, and
what still waits.

``build_report(root)`` reads the manifest (the few queries below: the only SQL of the report) and the dataset
images the manifest names (``frames.image``; paths are never built here) and returns one JSON-ready dict:

- ``streams``: frames per split, labels per status, tracks, per stream; ``days``: the same per UTC day;
- ``day_night``: dataset images analysed as day or night (``budget.is_infrared`` on the stored JPEG);
- ``duplicates``: near-duplicate clusters of dataset images per stream (dHash within ``max_bits``) and the count
  of distinct frames;
- ``queues``: review and pending frames and how long they have waited (since they were stored);
- ``label_sizes``: the area in pixels of every accepted part (from its polygon) and a histogram;
- ``tracks``: labels per part track;
- ``tracks_seen``: part tracks the Labeler saw per stream (``store.tracks_seen``), and how many of them had no
  frame kept (all dropped by the novelty gate or refused by the budget); empty for a store without the table.

At most ``per_day`` images per stream and day are analysed (evenly spaced, the count is in the report).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.store.manifest import Manifest
from streamlabel.store.report_images import ImageCache, duplicate_clusters
from streamlabel.store.tracks_seen import has_tracks_seen

log = logging.getLogger(__name__)

REPORT_VERSION = 1
DUPLICATE_MAX_BITS = 4  # dHash bits two images may differ in and still be near-duplicates (of 64)
PER_DAY = 2000  # images analysed per stream and day at most
AREA_BINS = 24

# Every query of the report, in one place (the manifest's schema: store/manifest.py).
SQL = {
    "frames": "SELECT stream, substr(time, 1, 10) AS day, split, hold, COUNT(*) AS n FROM frames "
    "GROUP BY stream, day, split, hold",
    "labels": "SELECT f.stream, substr(f.time, 1, 10) AS day, l.status, COUNT(*) AS n FROM labels l "
    "JOIN frames f ON f.frame_id = l.frame_id GROUP BY f.stream, day, l.status",
    "tracks": "SELECT f.stream, l.track_id, COUNT(*) AS n FROM labels l JOIN frames f ON f.frame_id = l.frame_id "
    "WHERE l.track_id IS NOT NULL AND l.status = 'accepted' GROUP BY f.stream, l.track_id",
    "images": "SELECT stream, substr(time, 1, 10) AS day, image FROM frames "
    "WHERE split = 'dataset' AND image IS NOT NULL ORDER BY stream, time, frame_id",
    "queues": "SELECT frame_id, stream, created, CASE WHEN split IN ('review', 'pending') THEN split ELSE hold END "
    "AS queue FROM frames WHERE split IN ('review', 'pending') OR hold IN ('review', 'pending')",
    "queue_labels": "SELECT status, COUNT(*) AS n FROM labels WHERE status IN ('review', 'pending') GROUP BY status",
    "tracks_seen": "SELECT stream, COUNT(*) AS tracks, SUM(frames_kept = 0) AS unkept, SUM(frames_seen) AS seen, "
    "SUM(frames_kept) AS kept FROM tracks_seen GROUP BY stream ORDER BY stream",
    "fingerprint": "SELECT (SELECT COUNT(*) FROM frames), (SELECT MAX(created) FROM frames), "
    "(SELECT group_concat(status || n) FROM (SELECT status, COUNT(*) AS n FROM labels GROUP BY status))",
    "areas": "SELECT l.polygon, f.width, f.height FROM labels l JOIN frames f ON f.frame_id = l.frame_id "
    "WHERE l.status = 'accepted'",
}


def build_report(
    root: Path,
    *,
    infrared_max_saturation: float = 12.0,
    max_bits: int = DUPLICATE_MAX_BITS,
    per_day: int = PER_DAY,
    now: datetime | None = None,
    cache: bool = True,
) -> dict[str, Any]:
    """The figures of the store at ``root`` (see the module docstring); raises FileNotFoundError without one."""
    if not (root / "manifest.sqlite").is_file():
        raise FileNotFoundError(f"no store at {root}: {root / 'manifest.sqlite'} is missing (check store.path)")
    now = now or datetime.now(UTC)
    manifest = Manifest(root / "manifest.sqlite")
    try:
        report: dict[str, Any] = {"v": REPORT_VERSION, "store": str(root), "generated": now.isoformat()}
        report |= _counts(manifest)
        report["tracks"] = _tracks(manifest)
        report["tracks_seen"] = _tracks_seen(manifest)
        report |= _images(manifest, root, infrared_max_saturation, max_bits, per_day, cache)
        report["queues"] = _queues(manifest, now)
        report["label_sizes"] = _label_sizes(manifest)
    finally:
        manifest.close()
    for stream, figures in report["streams"].items():
        figures["distinct_frames"] = report["duplicates"]["streams"].get(stream, {}).get("distinct", 0)
    report["totals"]["distinct_frames"] = sum(s["distinct_frames"] for s in report["streams"].values())
    return report


def _counts(manifest: Manifest) -> dict[str, Any]:
    """``streams``, ``days`` and ``totals``: frames per split (and hold) and labels per status."""
    streams: dict[str, dict[str, Any]] = defaultdict(lambda: {"frames": Counter(), "labels": Counter()})
    days: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"frames": Counter(), "labels": Counter()})
    for r in manifest.query(SQL["frames"]):
        for bucket in (streams[r["stream"]], days[(r["stream"], r["day"])]):
            bucket["frames"][r["split"]] += r["n"]
            if r["hold"]:
                bucket["frames"][f"{r['hold']}_beside_dataset"] += r["n"]
    for r in manifest.query(SQL["labels"]):
        streams[r["stream"]]["labels"][r["status"]] += r["n"]
        days[(r["stream"], r["day"])]["labels"][r["status"]] += r["n"]
    frames_total = sum(sum(v for k, v in s["frames"].items() if "_beside_" not in k) for s in streams.values())
    return {
        "totals": {"frames": frames_total, "labels": sum(sum(s["labels"].values()) for s in streams.values())},
        "streams": {name: {k: dict(v) for k, v in s.items()} for name, s in sorted(streams.items())},
        "days": [
            {"stream": stream, "day": day, "frames": dict(d["frames"]), "labels": dict(d["labels"])}
            for (stream, day), d in sorted(days.items())
        ],
    }


def _tracks(manifest: Manifest) -> dict[str, Any]:
    """Accepted labels per part track, per stream: how many tracks, the spread, and the largest ten."""
    per_stream: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in manifest.query(SQL["tracks"]):
        per_stream[r["stream"]].append((int(r["track_id"]), int(r["n"])))
    out = {}
    for stream, rows in sorted(per_stream.items()):
        counts = np.array([n for _, n in rows])
        top = sorted(rows, key=lambda row: (-row[1], row[0]))[:10]
        out[stream] = {
            "tracks": len(rows),
            "labels_per_track": {
                "min": int(counts.min()),
                "median": float(np.median(counts)),
                "max": int(counts.max()),
            },
            "largest": [{"track_id": t, "labels": n} for t, n in top],
            "counts": sorted(counts.tolist()),
        }
    return out


def _tracks_seen(manifest: Manifest) -> dict[str, Any]:
    """Part tracks seen per stream, those with no kept frame, and their frames seen and kept (all runs)."""
    if not has_tracks_seen(manifest):
        return {}
    return {
        r["stream"]: {
            "tracks": int(r["tracks"]),
            "tracks_without_kept_frame": int(r["unkept"]),
            "frames_seen": int(r["seen"]),
            "frames_kept": int(r["kept"]),
        }
        for r in manifest.query(SQL["tracks_seen"])
    }


def report_fingerprint(manifest: Manifest) -> str:
    """A cheap digest of what the report counts (frames, their newest, labels per status): equal means a cached
    report still holds, bar the queues' ages."""
    return "|".join(str(v) for v in manifest.query(SQL["fingerprint"])[0])


def _images(
    manifest: Manifest, root: Path, max_saturation: float, max_bits: int, per_day: int, use_cache: bool
) -> dict[str, Any]:
    """``day_night`` and ``duplicates`` from the analysed dataset images."""
    by_day: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in manifest.query(SQL["images"]):
        by_day[(r["stream"], r["day"])].append(r["image"])
    cache = ImageCache(root, enabled=use_cache)
    hashes: dict[str, list[int]] = defaultdict(list)
    day_night: dict[str, Counter[str]] = defaultdict(Counter)
    analysed: list[str] = []
    for (stream, _day), images in sorted(by_day.items()):
        picks = np.unique(np.linspace(0, len(images) - 1, min(per_day, len(images))).round().astype(int))
        for rel in (images[i] for i in picks):
            answer = cache.get(rel)
            if answer is None:
                day_night[stream]["unreadable"] += 1
                continue
            analysed.append(rel)
            day_night[stream]["night" if answer["saturation"] < max_saturation else "day"] += 1
            hashes[stream].append(int(answer["dhash"], 16))
        day_night[stream]["stored"] += len(images)
    cache.save(analysed)
    log.info("report: %d images analysed (%d from the cache)", len(analysed), cache.hits)
    duplicates = {stream: _clusters(values, max_bits) for stream, values in sorted(hashes.items())}
    return {
        "day_night": {s: dict(c) for s, c in sorted(day_night.items())},
        "duplicates": {"max_bits": max_bits, "per_day": per_day, "streams": duplicates},
    }


def _clusters(hashes: list[int], max_bits: int) -> dict[str, Any]:
    """Near-duplicate figures of one stream's image hashes: distinct frames (clusters) and cluster sizes."""
    sizes = Counter(duplicate_clusters(hashes, max_bits)).values()
    return {
        "analysed": len(hashes),
        "distinct": len(sizes),
        "clusters_over_one": sum(1 for n in sizes if n > 1),
        "largest_cluster": max(sizes),
        "cluster_sizes": sorted(sizes, reverse=True)[:50],
    }


def _queues(manifest: Manifest, now: datetime) -> dict[str, Any]:
    """Frames and labels waiting for a person (review) or the validator (pending), with their ages in days."""
    ages: dict[str, list[float]] = {"review": [], "pending": []}
    for r in manifest.query(SQL["queues"]):
        created = datetime.fromisoformat(r["created"]).astimezone(UTC)
        ages[r["queue"]].append(max((now - created).total_seconds(), 0.0) / 86_400)
    labels = {r["status"]: int(r["n"]) for r in manifest.query(SQL["queue_labels"])}
    out = {}
    for queue, values in ages.items():
        arr = np.array(values)
        out[queue] = {
            "frames": len(values),
            "labels": labels.get(queue, 0),
            "oldest_days": round(float(arr.max()), 3) if len(arr) else None,
            "median_age_days": round(float(np.median(arr)), 3) if len(arr) else None,
            "ages_days": [round(v, 4) for v in sorted(values)],
        }
    return out


def _label_sizes(manifest: Manifest) -> dict[str, Any]:
    """Areas in pixels of the accepted parts (shoelace of the polygon times the frame size) and their histogram."""
    areas = []
    for r in manifest.query(SQL["areas"]):
        poly = np.asarray(json.loads(r["polygon"]), np.float64).reshape(-1, 2) * (r["width"], r["height"])
        x, y = poly[:, 0], poly[:, 1]
        areas.append(0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))))
    arr = np.array(areas)
    if not len(arr):
        return {"count": 0, "area_px": None, "histogram": {"edges": [], "counts": [], "log": False}}
    lo, hi = max(float(arr.min()), 1.0), max(float(arr.max()), 2.0) * 1.0001
    log_bins = hi / lo >= 10  # log-spaced bins when sizes span a decade or more (far and near parts)
    edges = np.geomspace(lo, hi, AREA_BINS + 1) if log_bins else np.linspace(lo, hi, AREA_BINS + 1)
    counts, _ = np.histogram(np.clip(arr, lo, None), bins=edges)
    return {
        "count": len(arr),
        "area_px": {
            "min": round(float(arr.min()), 1),
            "median": round(float(np.median(arr)), 1),
            "max": round(float(arr.max()), 1),
        },
        "histogram": {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist(), "log": log_bins},
    }
