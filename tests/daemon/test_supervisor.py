"""Supervision with real readers on real files: the crash-loop guard, restarts, replace and remove."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamlabel.config import DaemonConfig, StreamConfig
from streamlabel.daemon.supervisor import CrashGuard, Supervisor
from streamlabel.frames import Frame
from streamlabel.streams import StreamEnd, StreamStatus

DEADLINE_S = 60.0


@pytest.mark.parametrize(
    ("max_restarts", "times", "allowed"),
    [
        (0, [0.0], [False]),
        (2, [0.0, 1.0, 2.0], [True, True, False]),
        (2, [0.0, 1.0, 11.5], [True, True, True]),  # the first restart left the 10 s window
        (3, [0.0, 0.0, 0.0, 0.0, 20.0], [True, True, True, False, True]),
    ],
)
def test_crash_guard_counts_restarts_in_a_sliding_window(
    max_restarts: int, times: list[float], allowed: list[bool]
) -> None:
    now = [0.0]
    guard = CrashGuard(max_restarts, 10.0, clock=lambda: now[0])
    got = []
    for t in times:
        now[0] = t
        got.append(guard.allow())
    assert got == allowed


class Labeler:
    """Stands in for the runner's loop: takes frames from every active slot and reports each StreamEnd."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.frames: dict[str, list[Frame]] = {}

    def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.sup.poll()
            for slot in self.sup.active():
                try:
                    item = slot.queue.get(timeout=0.01)
                except queue.Empty:
                    continue
                if isinstance(item, StreamEnd):
                    self.sup.ended(slot, item)
                else:
                    self.frames.setdefault(item.stream, []).append(item)


def daemon_cfg(**kw: float) -> DaemonConfig:
    return DaemonConfig(**{"max_restarts": 2, "restart_window_s": 60.0, "restart_backoff_s": 0.01, **kw})


@pytest.fixture
def events() -> list[tuple[str, StreamStatus, str]]:
    return []


def test_a_crash_looping_stream_goes_offline_and_the_others_go_on(
    scene_clip, tmp_path: Path, events: list, caplog: pytest.LogCaptureFixture
) -> None:
    clip, _ = scene_clip
    sup = Supervisor(daemon_cfg(), on_status=lambda *e: events.append(e))
    sup.add("good", StreamConfig(url=str(clip), fps=5, loop=True))
    sup.add("bad", StreamConfig(url=str(tmp_path / "missing.mp4"), fps=5))
    slots = {s.name: s for s in sup.slots()}
    good_reader = slots["good"].reader
    labeler = Labeler(sup)
    try:
        with caplog.at_level(logging.WARNING):
            labeler.until(lambda: not slots["bad"].active, "the bad stream to be given up")
        sampled = slots["good"].sampled
        labeler.until(lambda: slots["good"].sampled > sampled + 3, "the good stream to keep sampling")
        assert slots["bad"].restarts == 2
        assert slots["bad"].status == StreamStatus.OFFLINE
        assert "no such file" in slots["bad"].detail
        assert slots["good"].reader is good_reader and good_reader.is_alive()
        assert slots["good"].restarts == 0
        assert [e[1] for e in events if e[0] == "bad"][-1] == StreamStatus.OFFLINE
        assert "crashed 3 times" in caplog.text
        seqs = [f.seq for f in labeler.frames["good"]]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    finally:
        sup.stop_all()
        labeler.until(lambda: not sup.active(), "every reader to end")


def test_an_unexpected_exception_in_a_reader_is_a_crash(
    scene_clip, monkeypatch: pytest.MonkeyPatch, events: list
) -> None:
    clip, _ = scene_clip

    def broken(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("decoder bug")

    monkeypatch.setattr("streamlabel.streams.reader.open_container", broken)
    sup = Supervisor(daemon_cfg(max_restarts=1), on_status=lambda *e: events.append(e))
    sup.add("cam", StreamConfig(url=str(clip), fps=5))
    slot = sup.slots()[0]
    Labeler(sup).until(lambda: not slot.active, "the crashing stream to be given up")
    assert slot.restarts == 1
    assert slot.status == StreamStatus.OFFLINE
    assert "ZeroDivisionError: decoder bug" in slot.detail


def test_replace_restarts_with_the_new_config_and_keeps_frame_order(scene_clip, events: list) -> None:
    clip, _ = scene_clip
    sup = Supervisor(daemon_cfg(), on_status=lambda *e: events.append(e))
    sup.add("cam", StreamConfig(url=str(clip), fps=5, loop=True))
    slot = sup.slots()[0]
    labeler = Labeler(sup)
    try:
        labeler.until(lambda: len(labeler.frames.get("cam", [])) >= 5, "frames before the replace")
        old = slot.reader
        sup.replace("cam", StreamConfig(url=str(clip), fps=2, loop=True))
        labeler.until(lambda: slot.reader is not old and slot.reader is not None, "the new reader")
        assert slot.cfg.fps == 2
        n = len(labeler.frames["cam"])
        labeler.until(lambda: len(labeler.frames["cam"]) >= n + 3, "frames after the replace")
        seqs = [f.seq for f in labeler.frames["cam"]]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "frame ids must stay unique and in order"
        assert slot.restarts == 0  # a replace is not a crash
    finally:
        sup.stop_all()
        labeler.until(lambda: not sup.active(), "every reader to end")


def test_remove_stops_only_that_stream(scene_clip, events: list) -> None:
    clip, _ = scene_clip
    sup = Supervisor(daemon_cfg(), on_status=lambda *e: events.append(e))
    sup.add("a", StreamConfig(url=str(clip), fps=5, loop=True))
    sup.add("b", StreamConfig(url=str(clip), fps=5, loop=True))
    labeler = Labeler(sup)
    b_reader = {s.name: s for s in sup.slots()}["b"].reader
    try:
        sup.remove("a")
        labeler.until(lambda: [s.name for s in sup.slots()] == ["b"], "stream a to be removed")
        assert ("a", StreamStatus.OFFLINE, "removed from the config") in events
        assert b_reader is not None and b_reader.is_alive() and not b_reader.stopping
    finally:
        sup.stop_all()
        labeler.until(lambda: not sup.active(), "every reader to end")


def test_without_restarts_a_failed_stream_ends_at_once(tmp_path: Path, events: list) -> None:
    sup = Supervisor(daemon_cfg(), on_status=lambda *e: events.append(e), restarts=False)
    sup.add("bad", StreamConfig(url=str(tmp_path / "missing.mp4")))
    slot = sup.slots()[0]
    Labeler(sup).until(lambda: not slot.active, "the stream to end")
    assert slot.restarts == 0 and slot.status == StreamStatus.OFFLINE
