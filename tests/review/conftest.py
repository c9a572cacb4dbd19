"""Fixtures of the review tests: a store with review, pending and accepted parts, the config and the app."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.store import DatasetStore
from streamlabel.store.reviews import Reviews
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

# Debian's chromium, driven by Playwright through executable_path (nothing is downloaded).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screens_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$REVIEW_SCREENSHOTS``, else the test's temp folder."""
    out = Path(os.environ.get("REVIEW_SCREENSHOTS") or tmp_path / "screens")
    out.mkdir(parents=True, exist_ok=True)
    return out


# One frame per entry: the statuses of its parts. Frame 3 has an accepted and a review part (two copies).
FRAMES = [["review"], ["review"], ["pending"], ["accepted", "review"], ["accepted"], ["rejected"], ["review"]]


def fill(
    store: DatasetStore, stream: str = "kitchen", frames: list[list[str]] = FRAMES, start: datetime = T0
) -> list[str]:
    """Write ``frames`` (one track, 0.5 s apart, confidences spread over 0.5-0.95); returns the frame ids."""
    ids = []
    for seq, statuses in enumerate(frames):
        res = make_result(
            stream,
            seq,
            statuses,
            when=start + timedelta(seconds=seq * 0.5),
            size=(240, 320),
            track_ids=[1] * len(statuses),
            part_width=0.06,
        )
        verdicts = res.parts.data["verdict"]
        for k, verdict in enumerate(verdicts):
            checks = {"part_visible": True, "part_open": statuses[k] != "rejected"}
            verdicts[k] = replace(verdict, confidence=round(0.5 + 0.07 * seq + 0.01 * k, 3), checks=checks)
        store.write(res, CONFIG_HASH)
        ids.append(res.frame.frame_id)
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DatasetStore]:
    s = new_store(tmp_path / "store")
    fill(s)
    yield s
    s.close()


@pytest.fixture
def cfg() -> Config:
    return Config()


@pytest.fixture
def reviews(store: DatasetStore, cfg: Config) -> Reviews:
    return Reviews(store, cfg.target.validation.review_threshold)


def label_ids(store: DatasetStore, status: str) -> list[int]:
    """Label row ids with ``status``, oldest first."""
    return [int(r[0]) for r in store.manifest.query("SELECT id FROM labels WHERE status = ? ORDER BY id", (status,))]
