"""Redaction of credentials: no password from a config or URL ever reaches a log line or an error message."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*)(?::[^@/\s]*)?@", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***`` (``rtsp://user:***@host``)."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
