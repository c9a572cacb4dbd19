"""Plain-data views of a running daemon's figures: safe copies of dicts the labeler mutates, and the stats event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Attempts at copying a dict another thread mutates before giving up for this answer.
SNAPSHOT_TRIES = 5
# Per stream figures in the stats event.
STATS_STREAM_KEYS = ("status", "fps", "sampled", "dropped", "reconnects", "restarts")


def snapshot(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a dict the labeler thread may be adding keys to (a copy that races is taken again)."""
    for _ in range(SNAPSHOT_TRIES):
        try:
            return dict(mapping)
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return {}


def stage_times(times: Any) -> dict[str, dict[str, Any]]:
    """Seconds and items per stage of a ``StageTimes``, for /status and the stats event."""
    return {k: {"seconds": round(v, 3), "items": times.items.get(k, 0)} for k, v in snapshot(times.seconds).items()}


def stats_payload(state: dict[str, Any]) -> dict[str, Any]:
    """The periodic stats event's figures, taken from the daemon's /status state."""
    return {
        "uptime_s": state["uptime_s"],
        "frames_labeled": state["frames_labeled"],
        "frames_stored": state["frames_stored"],
        "labels": state["labels"],
        "streams": {n: {k: v[k] for k in STATS_STREAM_KEYS} for n, v in state["streams"].items()},
        "stages": state["stages"],
        "outbox_depth": state["outbox_depth"],
        "store_bytes": state["store_bytes"],
    }
