"""Fixing a part's mask with clicks: a SAM2 preview from the points, then ``decide`` with ``decision=fix``."""

from __future__ import annotations

import json
import logging

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streamlabel.review import images
from streamlabel.review.deps import item_id, reviews_of, store_of
from streamlabel.review.refine import NoMask
from streamlabel.store.rows import decode_jpeg

log = logging.getLogger(__name__)
MAX_POINTS = 32


def parse_points(text: str) -> list[tuple[float, float, int]]:
    """``[[x, y, 1|0], ...]`` with x, y normalized to 0-1; 400 names what is wrong."""
    try:
        raw = json.loads(text)
        points = [(float(x), float(y), int(label)) for x, y, label in raw]
    except (ValueError, TypeError):
        raise HTTPException(400, f"points {text[:80]!r}: expected JSON [[x, y, 1 or 0], ...]") from None
    if not 1 <= len(points) <= MAX_POINTS or not all(0 <= x <= 1 and 0 <= y <= 1 for x, y, _ in points):
        raise HTTPException(400, f"points: 1 to {MAX_POINTS} points with x and y between 0 and 1")
    return points


async def segment(request: Request) -> Response:
    """SAM2's mask for the clicked points as a normalized polygon (JSON), for the page to preview."""
    label_id, form = item_id(request), await request.form()
    points = parse_points(str(form.get("points", "")))
    reviews, store = reviews_of(request), store_of(request)

    def run() -> list[list[float]]:
        item = reviews.item(label_id)
        image = decode_jpeg(images.frame_path(store, item).read_bytes())
        if image is None:
            raise FileNotFoundError(f"frame {item.frame_id}: its image does not decode as JPEG")
        pixels = [(x * item.width, y * item.height, label) for x, y, label in points]
        return request.app.state.refiner().polygon(image, pixels)

    try:
        polygon = await run_in_threadpool(run)
    except NoMask as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    log.info("review: SAM2 mask for item %d from %d point(s): %d vertices", label_id, len(points), len(polygon))
    return JSONResponse({"polygon": polygon})


routes = [Route("/items/{label_id}/segment", segment, methods=["POST"], name="segment")]
