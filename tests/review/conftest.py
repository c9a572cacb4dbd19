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
from streamlabel.review import ReviewServer
from streamlabel.store import DatasetStore
from streamlabel.store.audit import Audits
from streamlabel.store.reviews import Decision, Reviews
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


@pytest.fixture(scope="session")
def sam_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A config whose SAM2 is a tiny random-weight model (the real code path; masks are arbitrary)."""
    pytest.importorskip("sam2", reason="needs the sam2 package")
    from streamlabel.tiny.sam2 import build_tiny_sam2

    config, checkpoint = build_tiny_sam2(tmp_path_factory.mktemp("sam2"))
    segment = {"config": str(config), "checkpoint": str(checkpoint)}
    return Config.model_validate({"models": {"device": "cpu", "segment": segment}})


@pytest.fixture
def cfg() -> Config:
    """The default config, but no daemon's /status is asked for stream states (tests/review/test_live.py does)."""
    return Config.model_validate({"daemon": {"metrics_address": None}})


@pytest.fixture
def reviews(store: DatasetStore, cfg: Config) -> Reviews:
    return Reviews(store, cfg.target.validation.review_threshold)


def label_ids(store: DatasetStore, status: str) -> list[int]:
    """Label row ids with ``status``, oldest first."""
    return [int(r[0]) for r in store.manifest.query("SELECT id FROM labels WHERE status = ? ORDER BY id", (status,))]


# --------------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium through Playwright (skipped without either)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright for Python (the test extra)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    return screens_dir(tmp_path)


def serve(store: DatasetStore, cfg: Config) -> ReviewServer:
    """The review page on a free loopback port, started."""
    server = ReviewServer(cfg, store, address="127.0.0.1:0")
    server.start()
    return server


@pytest.fixture
def page(browser, store: DatasetStore, cfg: Config) -> Iterator[object]:
    yield from open_page(browser, serve(store, cfg))


def open_page(browser, server: ReviewServer) -> Iterator[object]:
    """A laptop-sized page on ``server`` (stopped after); a console error or page error fails the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server.bound)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        context.close()
        server.stop()
    assert errors == [], f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------ a calibrated store


def add_frame(store: DatasetStore, seq: int, statuses: list[str], confidence: float) -> list[int]:
    """One frame of ``statuses`` parts, all of ``confidence``; returns their label ids."""
    res = make_result("kitchen", seq, statuses, when=T0 + timedelta(seconds=seq))
    verdicts = res.parts.data["verdict"]
    for k, verdict in enumerate(verdicts):
        verdicts[k] = replace(verdict, confidence=confidence)
    store.write(res, CONFIG_HASH)
    rows = store.manifest.query("SELECT id FROM labels WHERE frame_id = ? ORDER BY id", (res.frame.frame_id,))
    return [int(r[0]) for r in rows]


@pytest.fixture
def known(tmp_path: Path) -> Iterator[DatasetStore]:
    """20 audited parts (18 accepted by the pipeline, people agree on 17; 2 review items, one right), then 10
    auto-accepted parts and 2 ordinary review items (one accepted by a person) outside the audit."""
    store = new_store(tmp_path / "store")
    auto = [add_frame(store, k, ["accepted"], round(0.81 + 0.01 * k, 3))[0] for k in range(18)]
    unsure = [add_frame(store, 18, ["review"], 0.6)[0], add_frame(store, 19, ["review"], 0.7)[0]]
    Audits(store.manifest, store.root, fraction=1.0).select()
    for k in range(10):
        add_frame(store, 20 + k, ["accepted"], 0.95)
    ordinary = [add_frame(store, 30, ["review"], 0.65)[0], add_frame(store, 31, ["review"], 0.75)[0]]
    reviews = Reviews(store)
    reviews.decide(auto[0], Decision.REJECT, "ann")  # the pipeline's one wrong acceptance (confidence 0.81)
    for label_id in auto[1:]:
        reviews.decide(label_id, Decision.ACCEPT, "ann")
    reviews.decide(unsure[0], Decision.ACCEPT, "ann")
    reviews.decide(unsure[1], Decision.NOT_TARGET, "ann")
    reviews.decide(ordinary[0], Decision.ACCEPT, "bob")
    reviews.decide(ordinary[1], Decision.REJECT, "bob")
    yield store
    store.close()
