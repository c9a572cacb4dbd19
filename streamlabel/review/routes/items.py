"""The item: the full frame with its boxes and mask, the zoomed part, the verdict, its track; decide and undo."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from streamlabel.review import images
from streamlabel.review.deps import filter_args, item_id, queue_filter, reviews_of, store_of
from streamlabel.store.reviews import Decision, ReviewItem

log = logging.getLogger(__name__)


async def item_page(request: Request) -> Response:
    """The item view."""
    return await run_in_threadpool(_render_item, request)


def _render_item(request: Request) -> Response:
    reviews, label_id = reviews_of(request), item_id(request)
    item = reviews.item(label_id)
    prev_id, next_id = reviews.neighbours(queue_filter(request), label_id)
    parts = reviews.frame_parts(item.frame_id)
    args = filter_args(request)
    context = {
        "item": item,
        "parts": [overlay(p, p.id == item.id) for p in parts],
        "anchor": box(item.anchor_xyxy),
        "track": reviews.track(item),
        "history": reviews.history(label_id),
        "prev_id": prev_id,
        "next_id": next_id,
        "query": urlencode(args),
        "threshold": reviews.review_threshold,
        "open": item.status in ("review", "pending"),
        "counts": reviews.manifest.counts(),
    }
    return request.app.state.templates.render(request, "items/page.html", context)


def box(xyxy: str) -> dict[str, float]:
    """A ``[x1, y1, x2, y2]`` JSON box as the SVG rect's x, y, w, h."""
    x1, y1, x2, y2 = json.loads(xyxy)
    return {"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1}


def overlay(part: ReviewItem, current: bool) -> dict[str, object]:
    """What the SVG overlay draws of one part: its box and its polygon in frame pixels."""
    points = json.loads(part.polygon)
    svg_points = " ".join(f"{x * part.width:.1f},{y * part.height:.1f}" for x, y in points)
    return {"id": part.id, "status": part.status, "current": current, "box": box(part.xyxy), "points": svg_points}


async def frame_image(request: Request) -> Response:
    """The frame's unpainted copy (the pixels the validator saw)."""
    store, reviews, label_id = store_of(request), reviews_of(request), item_id(request)
    path = await run_in_threadpool(lambda: images.frame_path(store, reviews.item(label_id)))
    return FileResponse(path, media_type="image/jpeg")


async def decide(request: Request) -> Response:
    """Apply ``decision`` to the item; from the queue the card disappears, from the item page the next one opens.

    ``expect`` is the status the page showed: a part decided meanwhile (another tab) answers 409 with who did it.
    """
    label_id, form = item_id(request), await request.form()
    try:
        decision = Decision(str(form.get("decision", "")))
    except ValueError:
        return HTMLResponse(
            f"decision {form.get('decision')!r}: choose accept, reject, not_target or undo", status_code=400
        )
    who = request.app.state.guard.who(request)
    expect = str(form["expect"]) if form.get("expect") else None
    polygon = _polygon(str(form["polygon"])) if form.get("polygon") else None
    row = await run_in_threadpool(reviews_of(request).decide, label_id, decision, who, expect, polygon)
    log.info(
        "review: %s decided %s on item %d (%s -> %s)", who, decision, label_id, row["previous_status"], row["status"]
    )
    then = str(form.get("then", ""))
    if then.startswith("/") and not then.startswith("//"):
        return Response("", headers={"HX-Redirect": then})
    return HTMLResponse("")


def _polygon(text: str) -> list[list[float]]:
    try:
        points = [[float(x), float(y)] for x, y in json.loads(text)]
    except (ValueError, TypeError):
        raise HTTPException(400, f"polygon {text[:80]!r}: expected JSON [[x, y], ...] normalized to 0-1") from None
    return points


async def undo(request: Request) -> Response:
    """Undo the latest decision on this item; the page reloads."""
    label_id, who = item_id(request), request.app.state.guard.who(request)
    await run_in_threadpool(reviews_of(request).undo, label_id, who)
    return Response("", headers={"HX-Refresh": "true"})


routes = [
    Route("/items/{label_id}", item_page, name="item"),
    Route("/items/{label_id}/frame.jpg", frame_image, name="frame_image"),
    Route("/items/{label_id}/decide", decide, methods=["POST"], name="decide"),
    Route("/items/{label_id}/undo", undo, methods=["POST"], name="undo"),
]
