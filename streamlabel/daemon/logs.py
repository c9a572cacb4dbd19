"""Service logging: one line per event, no timestamps under journald (it adds its own), secrets redacted."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from streamlabel.redaction import redact

NOISY_LOGGERS = ("httpx", "urllib3", "PIL", "matplotlib", "paho")


class OneLineFormatter(logging.Formatter):
    """Formats a record on one line: newlines of messages and tracebacks become `` | `` and URLs lose passwords."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return redact(text).replace("\r", "").replace("\n", " | ")


class QuietRootFilter(logging.Filter):
    """Drops INFO and DEBUG records logged on the root logger: libraries (SAM2) log one per batch there."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root" or record.levelno >= logging.WARNING


def under_journald(environ: dict[str, str] | None = None) -> bool:
    """Whether stderr goes to the journal: systemd sets ``$JOURNAL_STREAM`` only when it connects stderr there."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM"))


def setup_service_logging(level: str, environ: dict[str, str] | None = None, stream: TextIO | None = None) -> None:
    """Configure the root logger for the daemon (on stderr unless ``stream`` is given)."""
    journal = under_journald(environ)
    fmt = "%(levelname)s %(name)s: %(message)s" if journal else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter(fmt))
    if level != "DEBUG":
        handler.addFilter(QuietRootFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
