"""What the routes read from ``app.state`` and the query string; bad input raises HTTPException naming it."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from streamlabel.store.dataset import DatasetStore
from streamlabel.store.review_queue import ALL_STATUSES
from streamlabel.store.reviews import OPEN_STATUSES, QueueFilter, Reviews

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STATUS_CHOICES = {
    "open": tuple(str(s) for s in OPEN_STATUSES),
    "review": ("review",),
    "pending": ("pending",),
    "rejected": ("rejected",),
    "open+rejected": (*(str(s) for s in OPEN_STATUSES), "rejected"),
    "audit": ALL_STATUSES,  # undecided parts of audit frames, whatever their status (store/audit.py)
}
FILTER_KEYS = ("stream", "status", "check", "min", "max", "day", "disagrees")


def reviews_of(request: Request) -> Reviews:
    """The app's Reviews; FileNotFoundError (a 410 page) when the store was deleted underneath the server."""
    store_of(request)
    return request.app.state.reviews


def store_of(request: Request) -> DatasetStore:
    """The app's store; FileNotFoundError (a 410 page) when its manifest is gone: an open SQLite connection goes on
    reading a deleted file, so without this check the pages would show a store that no longer exists."""
    store: DatasetStore = request.app.state.store
    if not store.manifest.path.is_file():
        raise FileNotFoundError(
            f"the store at {store.root} is gone ({store.manifest.path.name} was deleted or moved); restore it, or "
            "restart the page on another store (--store)"
        )
    return store


def filter_args(request: Request) -> dict[str, str]:
    """The queue's filter fields present in the query string (to carry them from page to page)."""
    return {k: request.query_params[k] for k in FILTER_KEYS if request.query_params.get(k)}


def queue_filter(request: Request) -> QueueFilter:
    """The queue filter of the query string; 400 names the bad field."""
    args = filter_args(request)
    status = args.get("status", "open+rejected" if request.app.state.cfg.review.show_rejected else "open")
    if status not in STATUS_CHOICES:
        raise HTTPException(400, f"status={status!r}: choose one of {', '.join(STATUS_CHOICES)}")
    day = args.get("day")
    if day and not DAY.match(day):
        raise HTTPException(400, f"day={day!r}: write it as YYYY-MM-DD")
    base = QueueFilter(statuses=STATUS_CHOICES[status], stream=args.get("stream"), failed_check=args.get("check"))
    if args.get("disagrees", "1") not in ("1", "on"):
        raise HTTPException(400, f"disagrees={args['disagrees']!r}: write disagrees=1, or leave it out for every part")
    base = replace(base, audit=status == "audit", disagrees="disagrees" in args)
    return replace(base, day=day, min_confidence=_fraction(args, "min"), max_confidence=_fraction(args, "max"))


def page_number(request: Request) -> int:
    return _int(request.query_params.get("page", "1"), "page", 1)


def item_id(request: Request) -> int:
    return _int(request.path_params["label_id"], "item id", 0)


def _fraction(args: dict[str, Any], key: str) -> float | None:
    if key not in args:
        return None
    try:
        value = float(args[key])
    except ValueError:
        raise HTTPException(400, f"{key}={args[key]!r}: a confidence is a number from 0 to 1") from None
    if not 0 <= value <= 1:
        raise HTTPException(400, f"{key}={value}: a confidence is a number from 0 to 1")
    return value


def _int(value: Any, what: str, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{what} {value!r} is not a whole number") from None
    if number < minimum:
        raise HTTPException(400, f"{what} {number} is below {minimum}")
    return number
