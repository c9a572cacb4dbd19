"""``create_app``: the review page as a Starlette app over one open store.

Routes: ``routes/auth.py`` (public: the login form), ``routes/queue.py``, ``items.py``, ``report.py`` … (behind the
Guard: token and CSRF, ``security.py``), and the vendored static files (public: htmx, keymap.js, CSS).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from streamlabel.config import Config
from streamlabel.review.live_state import StreamStates
from streamlabel.review.refine import Refiner, refiner_factory
from streamlabel.review.routes import auth, calibration, fix, items, live, queue, report
from streamlabel.review.security import Guard, GuardMiddleware
from streamlabel.review.templating import Templates
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.reviews import ReviewConflict, ReviewError, Reviews, UnknownItem

log = logging.getLogger(__name__)


def create_app(
    cfg: Config,
    store: DatasetStore,
    sink: Any = None,
    reviews: Reviews | None = None,
    refiner: Callable[[], Refiner] | None = None,
) -> Starlette:
    """The review app for ``store``; ``sink`` (the daemon's event sink) is woken after each decision when given.

    ``refiner`` gives the SAM2 refiner of mask fixes (default: one over ``cfg.models.segment``, loaded on the
    first fix; the daemon passes one over its segmenter's model).
    """
    guard = Guard(cfg.review.token)
    app = Starlette(
        routes=[
            Mount("/static", app=StaticFiles(packages=[("streamlabel.review", "static")]), name="static"),
            *auth.routes,
            Mount(
                "",
                routes=[*queue.routes, *items.routes, *fix.routes, *live.routes, *report.routes, *calibration.routes],
                middleware=[Middleware(GuardMiddleware, guard=guard)],
            ),
        ],
        exception_handlers={
            UnknownItem: _not_found,
            ReviewConflict: _conflict,
            ReviewError: _refused,
            FileNotFoundError: _gone,
            sqlite3.Error: _store_error,
            HTTPException: _http_error,
        },
    )
    app.state.cfg = cfg
    app.state.store = store
    app.state.reviews = reviews or Reviews(store, cfg.target.validation.review_threshold)
    app.state.guard = guard
    app.state.refiner = refiner or refiner_factory(cfg)
    app.state.templates = Templates()
    app.state.stream_states = StreamStates(sink, None if sink is not None else cfg.daemon.metrics_address)
    if sink is not None and hasattr(sink, "wake"):
        app.add_middleware(_WakeSink, sink=sink)
    return app


class _WakeSink:
    """Wakes the event sink after a POST, so that a decision's event goes out at once."""

    def __init__(self, app: Any, sink: Any) -> None:
        self.app, self.sink = app, sink

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope.get("method") == "POST":
            self.sink.wake()


def _flash(request: Request, text: str, status_code: int) -> Response:
    """The message as a flash fragment for htmx (retargeted to ``#flash``), else as a small page."""
    if request.headers.get("hx-request"):
        html = f'<div class="flash error" role="alert">{_escape(text)}</div>'
        return HTMLResponse(html, status_code, headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    context = {"status_code": status_code, "text": text, "counts": {}}
    return request.app.state.templates.render(request, "error.html", context, status_code=status_code)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _flash(request, str(exc), 404)


async def _conflict(request: Request, exc: Exception) -> Response:
    return _flash(request, f"Conflict: {exc}", 409)


async def _refused(request: Request, exc: Exception) -> Response:
    return _flash(request, str(exc), 409)


async def _gone(request: Request, exc: Exception) -> Response:
    log.warning("review: %s", exc)
    return _flash(request, f"The store changed underneath the page: {exc}", 410)


async def _store_error(request: Request, exc: Exception) -> Response:
    log.error("review: the manifest failed: %s", exc)
    return _flash(request, f"The store's manifest cannot be read ({exc}); is the store still there?", 503)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code >= 500 or request.url.path.startswith("/static"):
        return PlainTextResponse(str(exc.detail), exc.status_code)
    return _flash(request, str(exc.detail), exc.status_code)
