"""Fixing a part's mask with clicks (a SAM2 preview, then ``decide`` with ``decision=fix``), and adding a part the
pipeline missed: a box drawn on the frame, SAM2's mask inside it as a preview, then ``add``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

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
MAX_VERTICES = 4096  # of a drawn part's polygon


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


async def _sam2_polygon(request: Request, prompt: Callable[[int, int], dict[str, object]], what: str) -> Response:
    """SAM2's mask on the item's frame for a prompt made from the frame's size (``refine.polygon`` keywords), as
    a normalized polygon (JSON) for the page to preview; 422 when SAM2 finds no mask."""
    label_id = item_id(request)
    reviews, store = reviews_of(request), store_of(request)

    def run() -> list[list[float]]:
        item = reviews.item(label_id)
        image = decode_jpeg(images.frame_path(store, item).read_bytes())
        if image is None:
            raise FileNotFoundError(f"frame {item.frame_id}: its image does not decode as JPEG")
        return request.app.state.refiner().polygon(image, **prompt(item.width, item.height))

    try:
        polygon = await run_in_threadpool(run)
    except NoMask as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    log.info("review: SAM2 mask for item %d from %s: %d vertices", label_id, what, len(polygon))
    return JSONResponse({"polygon": polygon})


async def segment(request: Request) -> Response:
    """SAM2's mask for the clicked points as a normalized polygon (JSON), for the page to preview."""
    points = parse_points(str((await request.form()).get("points", "")))

    def prompt(width: int, height: int) -> dict[str, object]:
        return {"points": [(x * width, y * height, label) for x, y, label in points]}

    return await _sam2_polygon(request, prompt, f"{len(points)} point(s)")


def parse_box(text: str) -> list[float]:
    """``[x1, y1, x2, y2]`` normalized to 0-1 with x1 < x2 and y1 < y2; 400 names what is wrong."""
    try:
        box = [float(v) for v in json.loads(text)]
    except (ValueError, TypeError):
        raise HTTPException(400, f"box {text[:80]!r}: expected JSON [x1, y1, x2, y2] normalized to 0-1") from None
    if len(box) != 4 or not all(0 <= v <= 1 for v in box) or box[0] >= box[2] or box[1] >= box[3]:
        raise HTTPException(400, f"box {text[:80]!r}: 4 numbers from 0 to 1, left < right and top < bottom")
    return box


async def segment_box(request: Request) -> Response:
    """SAM2's mask inside a box drawn on the item's frame (a part the pipeline missed), for the page to preview."""
    box = parse_box(str((await request.form()).get("box", "")))

    def prompt(width: int, height: int) -> dict[str, object]:
        return {"points": [], "box_xyxy": [box[0] * width, box[1] * height, box[2] * width, box[3] * height]}

    return await _sam2_polygon(request, prompt, "a drawn box")


async def add_part(request: Request) -> Response:
    """Add the drawn part to the item's frame, accepted by the person; answers the new item's id and page."""
    label_id, form = item_id(request), await request.form()
    polygon = parse_polygon(str(form.get("polygon", "")))
    reviews, who = reviews_of(request), request.app.state.guard.who(request)

    def run() -> dict[str, object]:
        return reviews.add(reviews.item(label_id).frame_id, polygon, who)

    row = await run_in_threadpool(run)
    log.info("review: %s added part %d to frame %s", who, row["label_id"], row["frame_id"])
    return JSONResponse({"label_id": row["label_id"], "url": f"/items/{row['label_id']}"})


def parse_polygon(text: str) -> list[list[float]]:
    """``[[x, y], ...]`` normalized to 0-1, 3 to ``MAX_VERTICES`` points; 400 names what is wrong."""
    try:
        points = [[float(x), float(y)] for x, y in json.loads(text)]
    except (ValueError, TypeError):
        raise HTTPException(400, f"polygon {text[:80]!r}: expected JSON [[x, y], ...] normalized to 0-1") from None
    if not 3 <= len(points) <= MAX_VERTICES or not all(0 <= v <= 1 for pt in points for v in pt):
        raise HTTPException(400, f"polygon: 3 to {MAX_VERTICES} points with x and y between 0 and 1")
    return points


routes = [
    Route("/items/{label_id}/segment", segment, methods=["POST"], name="segment"),
    Route("/items/{label_id}/box", segment_box, methods=["POST"], name="segment_box"),
    Route("/items/{label_id}/add", add_part, methods=["POST"], name="add_part"),
]
