"""The live view: each stream's state (the daemon's sink, or a daemon's /status beside ``streamlabel review``), its
rates from the manifest, and the page's own connection state when the server goes away (Chromium)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.daemon.metrics import DaemonMetrics, MetricsServer
from streamlabel.events import open_sink
from streamlabel.review import ReviewServer, create_app
from streamlabel.review.routes import live
from streamlabel.store import DatasetStore
from tests.fixtures.rtsp import free_port
from tests.review.conftest import ARGS, CHROMIUM, fill, screens_dir


def no_daemon(cfg: Config) -> Config:
    return cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update={"metrics_address": None})})


def panel(html: str, stream: str) -> str:
    match = re.search(rf'<article class="panel" data-stream="{stream}">(.*?)</article>', html, re.S)
    assert match, f"no panel of {stream}"
    return match.group(1)


def test_inside_the_daemon_the_states_come_from_its_sink(store: DatasetStore, cfg: Config) -> None:
    sink = open_sink(cfg, store.manifest)  # the real sink (events.jsonl here), not started: only its state is read
    sink.stream_status("kitchen", "reconnecting", "connection refused by 10.0.0.7")
    sink.stream_status("porch", "online")
    html = TestClient(create_app(cfg, store, sink)).get("/live").text
    assert "Stream states from the daemon" in html
    kitchen = panel(html, "kitchen")
    assert 'class="state reconnecting"' in kitchen and "connection refused by 10.0.0.7" in kitchen
    assert 'class="state online"' in panel(html, "porch")  # a stream with no frame yet still has its panel
    assert "No frame with a part stored yet" in panel(html, "porch")


def test_rates_are_frames_and_labels_per_minute_over_the_last_ten_minutes(store: DatasetStore, cfg: Config) -> None:
    now = datetime.now(UTC)
    fill(store, "garden", [["accepted", "accepted"], ["review"], ["accepted"]], start=now - timedelta(minutes=5))
    fill(store, "garden", [["accepted"]] * 4, start=now - timedelta(minutes=30))  # outside the rate window
    html = TestClient(create_app(no_daemon(cfg), store)).get("/live").text
    garden = panel(html, "garden")
    assert "<b>0.3</b> frames/min · <b>0.3</b> labels/min" in garden  # 3 frames, 3 accepted parts in 10 min
    assert "<b>7</b> frames stored in the last hour" in garden
    assert "<b>0.0</b> frames/min" in panel(html, "kitchen")  # stored in 2026-11: nothing lately
    assert "state unknown" in garden and "daemon.metrics_address is null" in html


def test_streamlabel_review_asks_a_daemons_status_endpoint(store: DatasetStore, cfg: Config) -> None:
    state = {"streams": {"kitchen": {"status": "finished", "detail": "end of file"}}}
    server = MetricsServer("127.0.0.1:0", DaemonMetrics(), lambda: (True, {}), lambda: state)
    server.start()
    try:
        cfg = cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update={"metrics_address": server.bound})})
        html = TestClient(create_app(cfg, store)).get("/live").text
    finally:
        server.stop()
    assert f"Stream states from the daemon on {server.bound}" in html
    assert 'class="state finished"' in panel(html, "kitchen") and "end of file" in panel(html, "kitchen")


def test_without_a_daemon_the_states_are_unknown_and_say_why(store: DatasetStore, cfg: Config) -> None:
    address = f"127.0.0.1:{free_port()}"
    cfg = cfg.model_copy(update={"daemon": cfg.daemon.model_copy(update={"metrics_address": address})})
    html = TestClient(create_app(cfg, store)).get("/live").text
    assert f"no daemon answers on {address}" in html and "state unknown" in panel(html, "kitchen")


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (apt-get install chromium)")
def test_the_page_says_disconnected_while_the_server_is_gone(
    store: DatasetStore, cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setattr(live, "REFRESH_S", 1)
    now = datetime.now(UTC)
    fill(store, "garden", [["accepted", "review"], ["accepted"]], start=now - timedelta(seconds=40))
    sink = open_sink(cfg, store.manifest)
    sink.stream_status("garden", "online")
    sink.stream_status("kitchen", "reconnecting", "no route to host (attempt 3, next in 8 s)")
    server = ReviewServer(no_daemon(cfg), store, sink, address="127.0.0.1:0", select_audit=False)
    server.start()
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, base_url=server.bound)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto("/live")
            page.wait_for_selector(".panel img")
            page.wait_for_load_state("networkidle")
            first = page.get_attribute("#streams", "data-updated")
            page.wait_for_function(f"document.querySelector('#streams').dataset.updated !== '{first}'")
            assert page.inner_text("#connection") == "● connected"
            page.screenshot(path=screens_dir(tmp_path) / "live.png")
        finally:
            server.stop()
        page.wait_for_selector("#connection.lost", timeout=10_000)
        assert "disconnected, retrying" in page.inner_text("#connection")
        page.screenshot(path=screens_dir(tmp_path) / "live-disconnected.png")
        browser.close()
    assert errors == []
