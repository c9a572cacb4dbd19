"""The daemon in process with scripted stages: the store outlives a housekeeping round caught by a stop, the
watchdog keeps pinging while a validator call hangs within its budget, and a run of files ends by itself."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamlabel.config import Config
from streamlabel.daemon.notify import Notifier
from streamlabel.daemon.service import Daemon
from streamlabel.stages.validate import OllamaValidator
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from tests.daemon.harness import HeldValidator, scripted_stages, wait_until
from tests.store.synthetic import CONFIG_HASH, make_result, new_store

RUN_DEADLINE_S = 120.0


class Served:
    """``Daemon.run`` in a thread (signals stay with pytest); ``code`` is its exit status once it returned."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, name="daemon-main", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.daemon.run()

    def join(self, deadline_s: float = RUN_DEADLINE_S) -> int:
        self.thread.join(deadline_s)
        assert not self.thread.is_alive(), f"the daemon did not end within {deadline_s:.0f} s"
        assert self.code is not None
        return self.code


def config(streams: dict[str, Any] | None = None, **sections: Any) -> Config:
    return Config.model_validate(
        {
            "streams": streams or {},
            "models": {"batch_size": 2},
            "daemon": {"metrics_address": None, "stop_timeout_s": 20},
            "review": {"address": None},  # no review page on a fixed port in tests
            "tracking": {"novelty": {"enabled": False}},  # every frame is judged and stored: the counts below
            **sections,
        }
    )


def pending(root: Path) -> int:
    store = DatasetStore(root, ["eye"])
    try:
        return int(store.manifest.query("SELECT COUNT(*) FROM frames WHERE split = 'pending'")[0][0])
    finally:
        store.close()


def test_a_stop_during_a_retry_round_waits_for_it_before_closing_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13.2: the round's validator call outlasts the old 5 s join; the store must not close under it."""
    root = tmp_path / "store"
    store = new_store(root)
    for seq in range(3):
        store.write(make_result("cam", seq, ["pending"]), CONFIG_HASH)
    validator = HeldValidator(hold_in=("housekeeping",))
    daemon = Daemon(config(), None, scripted_stages(validator), store, notifier=Notifier({}))
    served = Served(daemon)
    assert validator.entered.wait(30), "the housekeeping round never asked the validator"
    daemon.request_stop("test")
    release = threading.Timer(6.5, validator.release.set)  # a bounded wait, longer than the old join
    release.start()
    try:
        assert served.join() == 0
    finally:
        validator.release.set()
        release.cancel()
    daemon.housekeeper.join(10)
    assert not daemon.housekeeper.is_alive()
    assert "closed database" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert pending(root) == 2  # the frame in hand was judged and moved; the round ended at the stop
    assert check_store(root) == []


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, list[tuple[float, str]]]]:
    """A unix datagram socket standing in for systemd's; yields its path and the (time, datagram) list."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    got: list[tuple[float, str]] = []
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                got.append((time.monotonic(), sock.recv(4096).decode()))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive, name="notify-listener", daemon=True)
    thread.start()
    yield path, got
    done.set()
    thread.join(5)
    sock.close()


def test_the_watchdog_keeps_pinging_while_a_validator_call_hangs_within_its_budget(
    tmp_path: Path, scene_clip, silent_host: int, notify_socket, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13.3: a validator that accepts and never answers holds the labeler for timeout_s (10 s, over three
    watchdog intervals); candidates go to pending and WATCHDOG=1 never pauses longer than the interval."""
    clip, _ = scene_clip
    path, got = notify_socket
    watchdog_s = 3.0
    cfg = config(
        {"cam": {"url": str(clip), "fps": 5, "loop": True, "queue_size": 4}},
        models={
            "batch_size": 2,
            "validate": {"kind": "ollama", "host": f"http://127.0.0.1:{silent_host}", "timeout_s": 10, "retries": 0},
        },
    )
    validator = OllamaValidator(cfg.models.validate_, cfg.target)  # its start-up probe times out: a warning only
    root = tmp_path / "store"
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(int(watchdog_s * 1e6))})
    daemon = Daemon(cfg, None, scripted_stages(validator), DatasetStore(root, ["eye"]), notifier=notifier)
    started = time.monotonic()
    served = Served(daemon)
    try:
        wait_until(lambda: "validator unavailable" in caplog.text, "the hung validator call to give up")
        assert time.monotonic() - started >= 10  # the call really held the labeler for its timeout
        wait_until(lambda: daemon.stats.labels["pending"] > 0, "candidates stored as pending")
    finally:
        stop_at = time.monotonic()
        daemon.request_stop("test")
        assert served.join() == 0
    pings = [t for t, data in got if t <= stop_at and "WATCHDOG=1" in data.split("\n")]
    ready = next(t for t, data in got if "READY=1" in data)
    gaps = [b - a for a, b in zip([ready, *pings], [*pings, stop_at], strict=True)]
    assert len(pings) >= (stop_at - ready) / watchdog_s
    assert max(gaps) < watchdog_s, f"a pause of {max(gaps):.1f} s between pings; systemd kills after {watchdog_s} s"
    assert "past its deadline" not in caplog.text
    assert pending(root) > 0
    assert check_store(root) == []


def test_a_run_of_files_ends_by_itself_once_pending_work_is_settled(
    tmp_path: Path, scene_clip, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13.10: every stream is a file, so the service ends when they are read: the validator was away for
    the labeler (candidates pending) but answers the final retry; events are delivered; exit 0."""
    caplog.set_level(logging.INFO)
    clip, _ = scene_clip
    cfg = config({"cam": {"url": str(clip), "fps": 5, "queue_size": 4}})
    validator = HeldValidator(away_in=("labeler", "housekeeping"))  # only the final retry gets an answer
    root = tmp_path / "store"
    daemon = Daemon(cfg, None, scripted_stages(validator), DatasetStore(root, ["eye"]), notifier=Notifier({}))
    assert daemon.runner.finite
    assert Served(daemon).join() == 0  # no stop asked for
    assert daemon.stats.frames == 10 and daemon.stats.labels["pending"] == 20
    assert daemon.housekeeper.judged == 10 and pending(root) == 0
    assert f"the dataset is in {root}" in caplog.text
    store = DatasetStore(root, ["eye"])
    try:
        assert store.manifest.outbox_depth() == 0  # every event went to events.jsonl
        splits = {r["split"] for r in store.manifest.query("SELECT split FROM frames")}
        assert splits == {"dataset"}
    finally:
        store.close()
    assert (root / "events.jsonl").read_text().count('"label"') >= 10
    assert check_store(root) == []


@pytest.mark.parametrize(
    ("streams", "finite"),
    [
        ({}, False),
        ({"a": {"url": "/v/a.mp4"}}, True),
        ({"a": {"url": "/v/a.mp4"}, "b": {"url": "file:///v/b.mkv"}}, True),
        ({"a": {"url": "/v/a.mp4", "loop": True}}, False),
        ({"a": {"url": "/v/a.mp4"}, "cam": {"url": "rtsp://cam.local/s"}}, False),
        ({"a": {"url": "/v/a.mp4"}, "usb": {"url": "/dev/video0"}}, False),
        ({"a": {"url": "/v/a.mp4"}, "cam": {"url": "rtsp://cam.local/s", "enabled": False}}, True),
    ],
)
def test_only_files_means_every_enabled_stream_ends(streams: dict[str, Any], finite: bool) -> None:
    from streamlabel.daemon.service import only_files

    assert only_files(config(streams)) is finite
