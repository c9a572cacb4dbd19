"""The queue: a grid of parts waiting for a person, most uncertain first, with filters, paging and batch decisions."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamlabel.review import images
from streamlabel.review.deps import (
    STATUS_CHOICES,
    filter_args,
    item_id,
    page_number,
    queue_filter,
    reviews_of,
    store_of,
)
from streamlabel.review.routes.calibration import audit_state
from streamlabel.store.reviews import Decision, ReviewError

log = logging.getLogger(__name__)


async def queue_page(request: Request) -> Response:
    """The queue page (the ``grid`` block alone for htmx: filters and paging swap only the grid)."""
    return await run_in_threadpool(_render_queue, request, "")


def _render_queue(request: Request, message: str, status_code: int = 200) -> Response:
    reviews, cfg = reviews_of(request), request.app.state.cfg
    where, page = queue_filter(request), page_number(request)
    size = cfg.review.page_size
    items, total = reviews.queue(where, size, (page - 1) * size)
    args = filter_args(request)
    checks = [c.name for c in cfg.target.validation.checks]
    context = {
        "items": items,
        "total": total,
        "page": page,
        "pages": max((total + size - 1) // size, 1),
        "args": args,
        "query": urlencode(args),
        "page_query": lambda n: urlencode({**args, "page": n}),
        "streams": reviews.streams(),
        "statuses": list(STATUS_CHOICES),
        "checks": checks,
        "threshold": reviews.review_threshold,
        "message": message,
        "counts": reviews.manifest.counts(),
        "audit": audit_state(request) if where.audit else None,
    }
    return request.app.state.templates.render(request, "queue/page.html", context, "grid", status_code)


async def thumbnail(request: Request) -> Response:
    """The zoomed part with its mask (cached JPEG)."""
    label_id = item_id(request)
    reviews, store = reviews_of(request), store_of(request)
    size = request.app.state.cfg.review.thumb_px

    def render() -> bytes:
        return images.thumbnail(store, reviews.item(label_id), size)

    data = await run_in_threadpool(render)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def batch(request: Request) -> Response:
    """Accept or reject every selected item; conflicts are reported, the rest applied. Answers the grid."""
    form = await request.form()
    try:
        decision = Decision(str(form.get("decision", "")))
    except ValueError:
        return Response(f"decision {form.get('decision')!r}: choose accept, reject or not_target", status_code=400)
    ids = [int(v) for v in form.getlist("ids") if str(v).isdigit()]
    who = request.app.state.guard.who(request)
    done, problems = await run_in_threadpool(_decide_all, request, ids, decision, who)
    message = f"{decision} × {done}" + (f"; {len(problems)} not applied: " + "; ".join(problems) if problems else "")
    return await run_in_threadpool(_render_queue, request, message)


def _decide_all(request: Request, ids: list[int], decision: Decision, who: str) -> tuple[int, list[str]]:
    reviews, done, problems = reviews_of(request), 0, []
    for label_id in ids:
        try:
            reviews.decide(label_id, decision, who)
            done += 1
        except ReviewError as exc:
            problems.append(str(exc))
    log.info("review: %s applied %s to %d of %d selected item(s)", who, decision, done, len(ids))
    return done, problems


async def undo_last(request: Request) -> Response:
    """Undo the latest decision of this reviewer; the page reloads with the item back in its place."""
    reviews, who = reviews_of(request), request.app.state.guard.who(request)
    label_id = await run_in_threadpool(reviews.last_decision, who)
    if label_id is None:
        return Response(f"nothing to undo for {who}", status_code=409)
    await run_in_threadpool(reviews.undo, label_id, who)
    return Response("", headers={"HX-Refresh": "true"})


routes = [
    Route("/", queue_page, name="queue"),
    Route("/thumbs/{label_id}.jpg", thumbnail, name="thumbnail"),
    Route("/batch", batch, methods=["POST"], name="batch"),
    Route("/undo-last", undo_last, methods=["POST"], name="undo_last"),
]
