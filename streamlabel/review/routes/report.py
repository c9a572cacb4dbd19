"""The dataset report on the review page: ``/report`` shows the figures of ``streamlabel report dataset``
(``store.report.build_report``) and its PNG plots (``store.report_plots.write_plots``).

A report reads every dataset image once (the hashes are cached in ``report-cache.json``), so it is built once and
kept under ``<store>/.review-cache/report/`` (``report.json`` and the plots), like the thumbnails: a visit reuses it
while the manifest's fingerprint (frames, newest frame, labels per status) is unchanged, and also while it is
younger than ``ReportCache.rebuild_after_s`` (a busy daemon changes the fingerprint with every frame);
``/report?refresh=1`` builds it anew.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamlabel.review.deps import reviews_of, store_of
from streamlabel.review.images import CACHE_DIR
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.report import build_report, report_fingerprint
from streamlabel.store.report_plots import write_plots
from streamlabel.store.staging import atomic_write

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
PLOT_NAME = re.compile(r"^[a-z_]+$")
_CREATE_LOCK = threading.Lock()


class ReportCache:
    """The report of one store and its plots, built on demand and kept on disk (see the module docstring)."""

    rebuild_after_s = 60.0  # a changed store is reported anew at most this often (unless refresh is asked)

    def __init__(self, store: DatasetStore, infrared_max_saturation: float) -> None:
        self.store = store
        self.folder = store.root / CACHE_DIR / "report"
        self.infrared_max_saturation = infrared_max_saturation
        self._lock = threading.Lock()

    def get(self, refresh: bool = False) -> dict[str, Any]:
        """The report (with ``plots``: the plot names, and ``fingerprint``), built anew when stale or asked."""
        with self._lock:
            fingerprint = report_fingerprint(self.store.manifest)
            cached = self._load()
            if cached is not None and not refresh:
                age_s = time.time() - (self.folder / REPORT_FILE).stat().st_mtime
                if cached.get("fingerprint") == fingerprint or age_s < self.rebuild_after_s:
                    return cached
            return self._build(fingerprint)

    def plot(self, name: str) -> bytes:
        """The PNG of plot ``name``; FileNotFoundError when no report has drawn it."""
        if not PLOT_NAME.match(name):
            raise FileNotFoundError(f"plot {name!r}: not a plot name (lowercase letters and _)")
        return (self.folder / f"{name}.png").read_bytes()

    def _load(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / REPORT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _build(self, fingerprint: str) -> dict[str, Any]:
        start = time.perf_counter()
        report = build_report(self.store.root, infrared_max_saturation=self.infrared_max_saturation)
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".plots-") as tmp:
            paths = write_plots(report, Path(tmp))
            for path in paths:  # each plot replaced atomically: a page loading meanwhile sees old or new
                os.replace(path, self.folder / path.name)
        report |= {"fingerprint": fingerprint, "plots": [p.stem for p in paths]}
        atomic_write(self.folder / REPORT_FILE, json.dumps(report).encode())
        log.info("review: dataset report built in %.1f s", time.perf_counter() - start)
        return report


def cache_of(request: Request) -> ReportCache:
    """The app's ReportCache, made on first use."""
    state = request.app.state
    with _CREATE_LOCK:
        if getattr(state, "report_cache", None) is None:
            state.report_cache = ReportCache(store_of(request), state.cfg.store.infrared_max_saturation)
    return state.report_cache


async def report_page(request: Request) -> Response:
    """The report page; ``?refresh=1`` builds the report anew."""
    refresh = request.query_params.get("refresh", "") in ("1", "true", "yes")
    return await run_in_threadpool(_render, request, refresh)


def _render(request: Request, refresh: bool) -> Response:
    report = cache_of(request).get(refresh)
    context = {"r": report, "rows": stream_rows(report), "counts": reviews_of(request).manifest.counts()}
    return request.app.state.templates.render(request, "report/page.html", context)


def stream_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stream for the page's table: what ``streamlabel report dataset`` prints, and tracks seen."""
    rows = []
    for stream in sorted({*report["streams"], *report.get("tracks_seen", {})}):
        figures = report["streams"].get(stream, {"frames": {}, "labels": {}})
        frames, light = figures["frames"], report["day_night"].get(stream, {})
        analysed = light.get("day", 0) + light.get("night", 0)
        seen = report.get("tracks_seen", {}).get(stream, {})
        rows.append(
            {
                "stream": stream,
                "frames": sum(v for k, v in frames.items() if "_beside_" not in k),
                "split": {s: frames.get(s, 0) for s in ("dataset", "review", "pending", "rejected")},
                "accepted": figures["labels"].get("accepted", 0),
                "distinct": figures.get("distinct_frames", 0),
                "night": light.get("night", 0) / analysed if analysed else None,
                "tracks": report["tracks"].get(stream, {}).get("tracks", 0),
                "seen": seen,
            }
        )
    return rows


async def plot_png(request: Request) -> Response:
    """One PNG plot of the cached report (the page links them with its build time, so they cache long)."""
    cache = cache_of(request)
    try:
        data = await run_in_threadpool(cache.plot, request.path_params["name"])
    except FileNotFoundError as exc:
        raise HTTPException(404, f"{exc}; open /report first to build the report") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


routes = [
    Route("/report", report_page, name="report"),
    Route("/report/plots/{name}.png", plot_png, name="report_plot"),
]
