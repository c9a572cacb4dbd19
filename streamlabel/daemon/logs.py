"""Service logging: one line per event, no timestamps under journald (it adds its own), secrets redacted."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TextIO

from streamlabel.redaction import redact

NOISY_LOGGERS = ("httpx", "urllib3", "PIL", "matplotlib", "paho", "ultralytics", "huggingface_hub", "transformers")
# torch deprecates torch.jit.script, which SAM2 calls at import: one FutureWarning per start, nothing to act on.
_TORCH_JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


class OneLineFormatter(logging.Formatter):
    """Formats a record on one line: newlines of messages and tracebacks become `` | `` and URLs lose passwords."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return redact(text).replace("\r", "").replace("\n", " | ")


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not to the one it was created with (a test
    runner swaps ``sys.stderr`` per command and closes the old one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value  # always the current sys.stderr


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
    handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(OneLineFormatter(fmt))
    if level != "DEBUG":
        handler.addFilter(QuietRootFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries(level)


def quiet_libraries(level: str = "INFO") -> None:
    """Keep the libraries' chatter out of a service log: progress bars, per-load INFO lines, known warnings.

    Hugging Face progress bars are switched off, Ultralytics' own stdout handler is removed so its warnings go
    through ours once, the noisy loggers log warnings only (everything at ``DEBUG``), and the SAM2/torch.jit
    deprecation warning is dropped.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is a dependency; tolerate a broken install here, it fails loudly later
        hf_logging = None
    if hf_logging is not None:
        hf_logging.disable_progress_bar()
    import ultralytics.utils  # noqa: F401  (it adds its own stdout handler at import: import it, then remove it)

    ultralytics_log = logging.getLogger("ultralytics")
    for old in list(ultralytics_log.handlers):
        ultralytics_log.removeHandler(old)
    ultralytics_log.propagate = True
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    warnings.filterwarnings("ignore", message=_TORCH_JIT_DEPRECATION, category=FutureWarning)
