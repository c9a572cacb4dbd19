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
    durability: Literal["process", "power"] = Field(
        "power",
        description="What a stored label survives. 'process': a killed daemon (every file is fsynced before its "
        "rename and the manifest is in WAL mode), but a power cut may lose the last commits and renames. 'power': "
        "a power cut too (SQLite synchronous=FULL and an fsync of the folder after every rename); costs write "
        "speed (docs/performance.md, `streamlabel bench store`).",
    )
    val_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of camera-days (stream and UTC day, chosen by a fixed hash) whose dataset frames go to "
        "images/val instead of images/train. Raising it measures the model on more scenes and trains on fewer; "
        "a camera-day is never in both.",
    )
    background_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of each stream's frames without any anchor and without people stored as negatives "
        "(empty label file). Raising it teaches the model more empty scenes (fewer false positives) at the cost "
        "of disk and of a dataset diluted by frames without labels; 0 stores none.",
    )
    ignore_margin_px: int = Field(
        4,
        ge=0,
        le=64,
        description="Pixels added on every side of the box of a part painted out of the dataset image (ignore "
        "region). Raising it also covers masks and eyes that spill past the box, at the cost of hiding more "
        "background around it (accepted parts are never painted over).",
    )
    daily_budget: int | None = Field(
        None,
        ge=1,
        description="Frames each stream may add to the store per UTC day, spent on the most novel ones (rule in "
        "docs/store.md). Unset: no limit. Raising it stores more frames (more disk, more review) of each day. "
        "Frames the novelty gate sends on are offered; a refused frame is not validated or stored (counted).",
    )
    night_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share of daily_budget kept for night (infrared) frames; the rest is for colour frames. "
        "Raising it stores more night footage; a share a stream never uses (no night) is left unspent. 0: one "
        "pool for both.",
    )
    infrared_max_saturation: float = Field(
        12.0,
        ge=0,
        le=255,
        description="A frame whose mean HSV saturation (0-255) is below this counts as infrared (night). Raising "
        "it also counts dim, washed-out colour frames as night.",
    )
    review_max_age_days: float | None = Field(
        None,
        gt=0,
        description="Delete review and pending copies older than this many days (the frame's parts become "
        "rejected as poor labels; rows stay). Unset: keep them until decided. Lower keeps less footage of a home "
        "and gives people and the validator less time.",
    )


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
        description="/healthz answers 503 when a labeling thread (loop or perceive) missed its heartbeat by this "
        "long, beyond the budget of a validator call it waits on. Must exceed the slowest batch of the GPU stages "
        "(model warm-up on the first one included); higher reports a hang later.",
    )
    clip_buffer_s: float = Field(
        20.0,
        ge=0,
        description="Seconds of sampled frames kept per live stream to encode clips from (file streams are "
        "remuxed and need none). Memory is about fps × this × frame size per stream; a longer segment's clip "
        "starts at the oldest kept frame. 0 turns clips of live streams off.",
    )
