"""Jinja2 templates of the review page, and rendering one block alone for htmx requests.

A page is a template that extends ``base.html``; an htmx request (``HX-Request``) for a part of it gets only the
named block (the habit of jinja2-fragments, done with Jinja2's own ``blocks`` so no extra dependency is needed).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse


class Templates:
    """The package's templates with the guard's CSRF token and the request in every context."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("streamlabel.review", "templates"),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.0f}%"
        self.env.filters["age"] = _age

    def render(
        self, request: Request, name: str, context: dict[str, Any], block: str | None = None, status_code: int = 200
    ) -> HTMLResponse:
        """The whole page, or only ``block`` when the request comes from htmx and names no full-page target."""
        ctx = {"request": request, "csrf_token": request.app.state.guard.csrf_token, **context}
        template = self.env.get_template(name)
        if block and request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
            html = "".join(template.blocks[block](template.new_context(ctx)))
        else:
            html = template.render(ctx)
        return HTMLResponse(html, status_code=status_code)


def _age(seconds: float) -> str:
    """A duration in words a person reads at a glance: 42 s, 7 min, 3 h, 2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
