"""Who may use the review page: a bearer token (or its login cookie) when one is set, and CSRF on every POST.

Without ``review.token`` the page is open to whoever reaches the address, which ``ReviewConfig`` allows only on
loopback. With a token, a request needs ``Authorization: Bearer <token>`` or the session cookie that the login
form sets (an HMAC of the token, so the token itself never sits in a cookie, a page or a log). A POST from a
browser session also needs ``X-CSRF-Token`` (htmx sends it from ``hx-headers`` on ``<body>``); a bearer request
is not a browser session and needs none.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import secrets
from urllib.parse import quote

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

SESSION_COOKIE = "streamlabel_review"
USER_COOKIE = "streamlabel_reviewer"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Guard:
    """The secrets of one running app: the configured token and this process's CSRF token."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value() if token is not None else None
        self.csrf_token = secrets.token_urlsafe(32)
        self.default_user = _os_user()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def session_value(self) -> str:
        """The login cookie's value: an HMAC of the token (changes when the token does)."""
        assert self._token is not None
        return hmac.new(self._token.encode(), b"streamlabel-review-session", hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def bearer(self, request: Request) -> bool:
        """Whether the request carries the right ``Authorization: Bearer`` header."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def session(self, request: Request) -> bool:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, self.session_value())

    def csrf_ok(self, request: Request) -> bool:
        return hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), self.csrf_token)

    def who(self, request: Request) -> str:
        """The reviewer's name: the one given at login (cookie), else the account that serves the page."""
        name = request.cookies.get(USER_COOKIE, "").strip()
        return name[:64] if name else self.default_user


class GuardMiddleware:
    """Applies the Guard to every route of the mount it wraps (routes outside it opt out where declared)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.check(Request(scope))
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        """None when the request may go on, else the refusal."""
        bearer = self.guard.enabled and self.guard.bearer(request)
        if self.guard.enabled and not bearer and not self.guard.session(request):
            log.info("review: refused %s %s from %s (no valid token)", request.method, request.url.path, _peer(request))
            if request.method in SAFE_METHODS and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            return PlainTextResponse(
                "401: this review page needs the token of review.token (Authorization: Bearer, or log in at /login)",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.method not in SAFE_METHODS and not bearer and not self.guard.csrf_ok(request):
            log.info("review: refused %s %s: missing or wrong CSRF token", request.method, request.url.path)
            return PlainTextResponse(
                "403: missing or stale X-CSRF-Token; reload the page (the server may have restarted)", status_code=403
            )
        return None


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "reviewer"
