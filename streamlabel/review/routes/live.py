"""The live view: each stream's state (review/live_state.py), its newest stored frame with its overlays, its rates and
what it stored in the last hour. The page polls itself; ``static/live.js`` shows when the server stops answering."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamlabel.review.deps import reviews_of
from streamlabel.review.routes.items import box, overlay

REFRESH_S = 5


async def live_page(request: Request) -> Response:
    """The live page; the ``streams`` block alone for htmx (it polls itself every ``REFRESH_S`` seconds)."""
    return await run_in_threadpool(_render_live, request)


def _render_live(request: Request) -> Response:
    reviews = reviews_of(request)
    now = datetime.now(UTC)
    states, source = request.app.state.stream_states.read()
    panels = []
    for entry in reviews.live(streams=list(states)):
        entry["state"] = states.get(entry["stream"])
        latest = entry["latest"]
        if latest is not None:
            item = reviews.item(int(latest["id"]))
            entry |= {
                "item": item,
                "anchor": box(item.anchor_xyxy),
                "overlays": [overlay(p, p.id == item.id) for p in reviews.frame_parts(item.frame_id)],
                "age_s": max((now - datetime.fromisoformat(latest["time"])).total_seconds(), 0.0),
            }
        panels.append(entry)
    context = {
        "panels": panels,
        "refresh_s": REFRESH_S,
        "counts": reviews.manifest.counts(),
        "source": source,
        "updated": now.strftime("%H:%M:%S"),
    }
    return request.app.state.templates.render(request, "live/page.html", context, "streams")


routes = [Route("/live", live_page, name="live")]
