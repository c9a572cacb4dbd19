"""``streamlabel status``: fetch the running daemon's state from its /status endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from streamlabel.daemon.metrics import parse_address

# Seconds to wait for the daemon's answer.
STATUS_TIMEOUT_S = 5.0


class StatusUnavailableError(RuntimeError):
    """The daemon did not answer (not running, or listening elsewhere)."""


def status_url(address: str) -> str:
    """The /status URL of a daemon listening on ``address`` (a wildcard host is reached on loopback)."""
    host, port = parse_address(address)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/status" if ":" in host else f"http://{host}:{port}/status"


def fetch_status(address: str, timeout_s: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """The daemon's state as a dict; StatusUnavailableError naming the address when it cannot be reached."""
    url = status_url(address)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        raise StatusUnavailableError(f"{url} answered HTTP {exc.code}: is another service on that port?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailableError(
            f"no streamlabel daemon answers at {url} ({reason}): is it running (systemctl status streamlabel) and "
            "is daemon.metrics_address the same in its config?"
        ) from None
    except json.JSONDecodeError:
        raise StatusUnavailableError(f"{url} did not answer JSON: is another service on that port?") from None
