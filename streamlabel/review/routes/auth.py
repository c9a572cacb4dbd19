"""The login form (public: declared outside the guarded mount). Sets the session and the reviewer's name."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from streamlabel.review.security import SESSION_COOKIE, USER_COOKIE

log = logging.getLogger(__name__)


def _next(value: object) -> str:
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") else "/"


async def login_page(request: Request) -> Response:
    context = {
        "next": _next(request.query_params.get("next")),
        "error": "",
        "needs_token": request.app.state.guard.enabled,
    }
    return request.app.state.templates.render(request, "auth/login.html", context)


async def login(request: Request) -> Response:
    """Check the token (and the form's CSRF field); set the session cookie (an HMAC, never the token)."""
    guard, form = request.app.state.guard, await request.form()
    target = _next(form.get("next"))
    if str(form.get("csrf_token", "")) != guard.csrf_token:
        return Response("403: stale login form; reload /login", status_code=403)
    if guard.enabled and not guard.token_matches(str(form.get("token", ""))):
        log.info("review: failed login from %s", request.client.host if request.client else "?")
        context = {"next": target, "error": "That is not the token of review.token.", "needs_token": True}
        return request.app.state.templates.render(request, "auth/login.html", context, status_code=401)
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    if guard.enabled:
        response.set_cookie(SESSION_COOKIE, guard.session_value(), httponly=True, samesite="strict", secure=secure)
    name = str(form.get("name", "")).strip()[:64]
    if name:
        response.set_cookie(USER_COOKIE, name, httponly=True, samesite="strict", secure=secure)
    return response


routes = [Route("/login", login_page, name="login_page"), Route("/login", login, methods=["POST"], name="login")]
