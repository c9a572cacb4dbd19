"""``/calibration``: the validator measured on audit items (store/calibration.py), and its reliability diagram."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamlabel.review.deps import reviews_of
from streamlabel.store.audit import Audits
from streamlabel.store.calibration import calibration, plot_reliability

DEFAULT_TARGET = 0.99


def audits_of(request: Request) -> Audits:
    """The app's audit, to read: requests never select (the daemon's housekeeping or ``ReviewServer`` does)."""
    state = request.app.state
    if getattr(state, "audits", None) is None:
        cfg, store = state.cfg, state.store
        state.audits = Audits(store.manifest, store.root, cfg.review.audit_fraction, cfg.store.infrared_max_saturation)
    return state.audits


def target_of(request: Request) -> float:
    """``?target=`` (the precision the threshold must meet); 400 names the bad value."""
    text = request.query_params.get("target") or str(DEFAULT_TARGET)
    try:
        target = float(text)
    except ValueError:
        target = -1.0
    if not 0 < target <= 1:
        raise HTTPException(400, f"target={text!r}: write the precision to meet as a number in (0, 1], e.g. 0.99")
    return target


def audit_state(request: Request) -> dict[str, Any]:
    """What the pages say of the audit selection: the fraction, frames considered and chosen so far."""
    rows = audits_of(request).manifest.query("SELECT count(*), coalesce(sum(chosen), 0) FROM audits")
    fraction = request.app.state.cfg.review.audit_fraction
    return {"fraction": fraction, "considered": int(rows[0][0]), "chosen": int(rows[0][1])}


def _report(request: Request) -> dict[str, Any]:
    reviews_of(request)  # the reviews table exists once the app's Reviews is open
    return calibration(audits_of(request), target_of(request))


async def calibration_page(request: Request) -> Response:
    """The calibration figures of the audit, and the review items' decisions apart."""
    report = await run_in_threadpool(_report, request)
    context = {"report": report, "target": target_of(request), "counts": reviews_of(request).manifest.counts()}
    return request.app.state.templates.render(request, "calibration/page.html", context)


async def reliability_png(request: Request) -> Response:
    """The reliability diagram as a PNG (drawn for each request: a few milliseconds of matplotlib)."""

    def draw() -> bytes:
        report = _report(request)
        with tempfile.TemporaryDirectory() as tmp:
            return plot_reliability(report, Path(tmp)).read_bytes()

    png = await run_in_threadpool(draw)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


routes = [
    Route("/calibration", calibration_page, name="calibration"),
    Route("/calibration/reliability.png", reliability_png, name="reliability"),
]
