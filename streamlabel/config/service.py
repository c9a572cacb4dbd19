"""``store`` and ``daemon``: where the dataset goes and how the service runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamlabel.config.base import _Model


class StoreConfig(_Model):
    """Where the dataset is written."""

    path: str = Field("./streamlabel-data", description="Dataset folder (created). Relative to the working dir.")
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of stored frames.")
    keep_rejected: bool = Field(
        False, description="Also write rejected candidates (image, label, verdict) under rejected/ for audits."
    )
    max_gb: float | None = Field(
        None,
        gt=0,
        description="Largest size of the store in GB; the oldest review and rejected files are pruned first, then "
        "the oldest clips and labels whose events were delivered. Unset: no size limit.",
    )
    max_age_days: float | None = Field(
        None,
        gt=0,
        description="Prune artefacts older than this many days (review, rejected, clips, dataset frames whose events "
        "were delivered; never pending frames or undelivered events). Unset: keep all.",
    )
    clips: bool = Field(True, description="Cut an MP4 clip (with a JSON sidecar) for every finished track segment.")


class DaemonConfig(_Model):
    """The long-running service."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    stop_timeout_s: float = Field(30.0, gt=0, description="Seconds SIGTERM waits for frames in flight before exiting.")
    metrics_address: str | None = Field(
        "127.0.0.1:9310",
        description="HOST:PORT of the Prometheus /metrics and /healthz endpoint; null turns it off.",
    )
    watchdog: bool = Field(
        True, description="Send systemd watchdog pings (WATCHDOG=1) while the labeler makes progress."
    )
    max_restarts: int = Field(
        5, ge=0, description="Crash-loop guard: restarts of one stream within restart_window_s before it is stopped."
    )
    restart_window_s: float = Field(300.0, gt=0, description="Window of the crash-loop guard, in seconds.")
    restart_backoff_s: float = Field(
        1.0,
        ge=0,
        description="Wait before restarting a crashed stream, doubled with every restart inside the window (capped "
        "at 60 s). Higher spares a failing camera; lower recovers sooner.",
    )
    health_max_age_s: float = Field(
        120.0,
        gt=0,
        description="/healthz answers 503 when the labeler loop has not ticked for this long. Must exceed the "
        "slowest batch (model warm-up on the first one included).",
    )
    clip_buffer_s: float = Field(
        20.0,
        ge=0,
        description="Seconds of sampled frames kept per live stream to encode clips from (file streams are "
        "remuxed and need none). Memory is about fps × this × frame size per stream; a longer segment's clip "
        "starts at the oldest kept frame. 0 turns clips of live streams off.",
    )
