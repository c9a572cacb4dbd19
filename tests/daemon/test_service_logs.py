"""Service logs: one line per event, no timestamp under journald, no password ever."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from streamlabel.daemon import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield io.StringIO()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.mark.parametrize(("environ", "stamped"), [({}, True), ({"JOURNAL_STREAM": "8:1234"}, False)])
def test_journald_gets_no_timestamps(captured: io.StringIO, environ: dict[str, str], stamped: bool) -> None:
    logs.setup_service_logging("INFO", environ, captured)
    logging.getLogger("streamlabel.test").info("stream %s: online", "kitchen")
    line = captured.getvalue()
    assert bool(TIMESTAMP.match(line)) is stamped
    assert line.rstrip("\n").endswith("INFO streamlabel.test: stream kitchen: online")


def test_one_line_per_event_and_no_password(captured: io.StringIO) -> None:
    logs.setup_service_logging("INFO", {"JOURNAL_STREAM": "8:1"}, captured)
    log = logging.getLogger("streamlabel.test")
    log.error("cannot open %s", "rtsp://admin:hunter2@10.0.0.5/stream1")
    try:
        raise ValueError("bad\nthing at rtsp://u:s3cret@cam/x")
    except ValueError:
        log.exception("reader failed")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "rtsp://admin:***@10.0.0.5/stream1" in lines[0]
    assert "hunter2" not in captured.getvalue() and "s3cret" not in captured.getvalue()
    assert "Traceback" in lines[1] and "ValueError" in lines[1]


def test_library_chatter_on_the_root_logger_is_dropped_unless_debugging(captured: io.StringIO) -> None:
    logs.setup_service_logging("INFO", {}, captured)
    logging.info("Computing image embeddings for the provided images...")
    logging.warning("a real warning")
    assert "Computing" not in captured.getvalue()
    assert "a real warning" in captured.getvalue()
    logs.setup_service_logging("DEBUG", {}, captured)
    logging.info("Computing image embeddings again")
    assert "Computing image embeddings again" in captured.getvalue()
