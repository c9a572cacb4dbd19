"""The dataset report on the review page (``/report``): the figures of ``streamlabel report dataset``, its plots from
the cache under the store, reuse of the cached report, and a screenshot in a real headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from streamlabel.config import Config, ReviewConfig
from streamlabel.review import ReviewServer, create_app
from streamlabel.review.routes import report as report_route
from streamlabel.store import DatasetStore
from streamlabel.store.tracks_seen import Sightings, TracksSeen
from tests.review.conftest import ARGS, CHROMIUM, FRAMES, fill, screens_dir

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def cell(html: str, stream: str, klass: str) -> str:
    row = re.search(rf'<tr data-stream="{stream}">(.*?)</tr>', html, re.S)
    assert row, f"no row of {stream}"
    got = re.search(rf'<td class="{klass}">([^<]*)</td>', row.group(1))
    assert got, f"no {klass} cell in {stream}'s row"
    return got.group(1)


def see_tracks(store: DatasetStore) -> None:
    """Kitchen's tracks 1 and 7 had a frame kept; 8 and 9 were seen only as near-copies (two batches)."""
    sightings = Sightings()
    sightings.add("kitchen", T0, [1, 7], kept=True)
    sightings.add("kitchen", T0 + timedelta(seconds=1), [7, 8], kept=False)
    sightings.add("kitchen", T0 + timedelta(seconds=2), [8], kept=False)
    TracksSeen(store.manifest, "run-1").write(sightings.take())
    sightings.add("kitchen", T0 + timedelta(seconds=3), [9], kept=False)
    TracksSeen(store.manifest, "run-1").write(sightings.take())


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The real build_report, recording each store it was asked to report."""
    calls: list[Path] = []
    real = report_route.build_report

    def counting(root: Path, **kwargs: Any) -> dict[str, Any]:
        calls.append(root)
        return real(root, **kwargs)

    monkeypatch.setattr(report_route, "build_report", counting)
    return calls


def test_the_page_shows_the_reports_figures_and_plots(store: DatasetStore, cfg: Config, builds: list[Path]) -> None:
    see_tracks(store)
    client = TestClient(create_app(cfg, store))
    page = client.get("/report")
    assert page.status_code == 200 and '<a href="/report">Report</a>' in page.text
    html = page.text
    frames = len(FRAMES)
    assert f"<b>{frames}</b> frames" in html
    row = re.search(r'<tr data-stream="kitchen"><td>kitchen</td><td>(\d+)</td>', html)
    assert row and int(row.group(1)) == frames
    assert cell(html, "kitchen", "tracks-seen") == "4"  # tracks 1, 7, 8, 9
    assert cell(html, "kitchen", "tracks-unkept") == "2"  # 8 and 9
    srcs = re.findall(r'src="(/report/plots/[a-z_]+\.png)\?v=[^"]+"', html)
    assert len(srcs) == 7 and "/report/plots/labels_per_track.png" in srcs
    for src in srcs:
        png = client.get(src)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG") and len(png.content) > 5000
    cached = store.root / ".review-cache" / "report"
    assert (cached / "report.json").is_file() and (cached / "day_night.png").is_file()
    assert builds == [store.root]


def test_the_cached_report_is_reused_until_the_store_changes(
    store: DatasetStore, cfg: Config, builds: list[Path]
) -> None:
    client = TestClient(create_app(cfg, store))
    assert client.get("/report").status_code == 200
    assert client.get("/report").status_code == 200
    assert len(builds) == 1  # unchanged store: the cached report
    fill(store, "garden", [["accepted"], ["review"]])
    assert "garden" not in client.get("/report").text  # changed, but younger than rebuild_after_s
    client.app.state.report_cache.rebuild_after_s = 0.0  # type: ignore[attr-defined]
    assert '<tr data-stream="garden">' in client.get("/report").text and len(builds) == 2
    assert client.get("/report").status_code == 200 and len(builds) == 2  # unchanged again
    assert client.get("/report?refresh=1").status_code == 200 and len(builds) == 3
    # A new app over the same store (a restarted daemon) starts from the report on disk.
    assert TestClient(create_app(cfg, store)).get("/report").status_code == 200 and len(builds) == 3


def test_plots_answer_404_for_unknown_names_and_before_a_report(store: DatasetStore, cfg: Config) -> None:
    client = TestClient(create_app(cfg, store))
    missing = client.get("/report/plots/day_night.png")
    assert missing.status_code == 404 and "open /report first" in missing.text
    client.get("/report")
    assert client.get("/report/plots/nothing_here.png").status_code == 404
    assert client.get("/report/plots/Day-Night.png").status_code == 404


def test_the_report_is_behind_the_token(store: DatasetStore) -> None:
    cfg = Config(review=ReviewConfig(address="0.0.0.0:9311", token=SecretStr("s3cret-token")))
    client = TestClient(create_app(cfg, store))
    assert client.get("/report").status_code == 401
    assert client.get("/report/plots/day_night.png").status_code == 401
    assert client.get("/report", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright for Python (the test extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_screenshot_of_the_report_page(chromium: Any, store: DatasetStore, cfg: Config, tmp_path: Path) -> None:
    see_tracks(store)
    fill(store, "garden", [["accepted"], ["accepted", "review"], ["pending"]], start=T0 + timedelta(days=1))
    server = ReviewServer(cfg, store, address="127.0.0.1:0")
    server.start()
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, base_url=server.bound)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/report")
        page.wait_for_load_state("networkidle")
        page.evaluate("Promise.all([...document.images].map(i => i.decode()))")
        loaded = page.evaluate("[...document.querySelectorAll('.plots img')].map(i => i.naturalWidth)")
        assert len(loaded) == 7 and all(w > 400 for w in loaded)
        assert page.locator("#streams-table tbody tr").count() == 2
        page.screenshot(path=screens_dir(tmp_path) / "report.png", full_page=True)
    finally:
        context.close()
        server.stop()
    assert errors == [], f"browser console errors: {errors}"
