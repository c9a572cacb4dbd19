"""SIGHUP planning: which streams start, stop and restart, what needs a restart, and bad files rejected."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.daemon.reload import load_for_reload, plan_reload


def cfg(streams: dict[str, dict], **sections: dict) -> Config:
    return Config.model_validate({"streams": streams, **sections})


A = {"url": "/v/a.mp4"}
B = {"url": "/v/b.mp4"}


@pytest.mark.parametrize(
    ("old", "new", "added", "removed", "changed", "unchanged"),
    [
        ({}, {}, [], [], [], []),
        ({"a": A}, {"a": A}, [], [], [], ["a"]),
        ({"a": A}, {"a": A, "b": B}, ["b"], [], [], ["a"]),
        ({"a": A, "b": B}, {"a": A}, [], ["b"], [], ["a"]),
        ({"a": A, "b": B}, {"a": {**A, "fps": 1.0}, "b": B}, [], [], ["a"], ["b"]),
        ({"a": A, "b": B}, {"a": A, "b": {**B, "enabled": False}}, [], ["b"], [], ["a"]),
        ({"a": {**A, "enabled": False}}, {"a": A}, ["a"], [], [], []),
    ],
)
def test_stream_changes(old, new, added, removed, changed, unchanged) -> None:
    plan = plan_reload(cfg(old), cfg(new))
    assert sorted(plan.added) == added
    assert sorted(plan.removed) == removed
    assert sorted(plan.changed) == changed
    assert sorted(plan.unchanged) == unchanged
    assert plan.needs_restart == []


def test_models_and_target_need_a_restart_and_keep_running_values() -> None:
    old = cfg({"a": A})
    new = cfg(
        {"a": A},
        target={"part": {"prompt": "nose"}},
        models={"batch_size": 2},
        daemon={"log_level": "DEBUG", "stop_timeout_s": 5},
    )
    plan = plan_reload(old, new)
    assert plan.needs_restart == ["target", "models", "daemon.stop_timeout_s"]
    assert plan.config.target == old.target
    assert plan.config.models == old.models
    assert plan.config.daemon.stop_timeout_s == old.daemon.stop_timeout_s
    assert plan.config.daemon.log_level == "DEBUG"  # applied live


def test_bad_file_is_rejected_with_key_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.yml"
    path.write_text("streams:\n  a:\n    url: /v/a.mp4\n    fps: -1\n")
    with caplog.at_level(logging.ERROR):
        assert load_for_reload(path, cfg({"a": A})) is None
    text = caplog.text
    assert "reload rejected" in text
    assert "line 4" in text and "streams.a.fps" in text


def test_extra_streams_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("streams:\n  a:\n    url: /v/a.mp4\n")
    running = cfg({"a": A, "cli": B})
    plan = load_for_reload(path, running, {"cli": running.streams["cli"]})
    assert plan is not None
    assert plan.removed == [] and sorted(plan.unchanged) == ["a", "cli"]


def test_train_privacy_and_review_changes_are_reported_as_needing_a_restart() -> None:
    old = cfg({"a": A})
    new = cfg({"a": A}, train={"epochs": 3}, privacy={"people": "drop"}, review={"audit_fraction": 0.1})
    plan = plan_reload(old, new)
    assert plan.needs_restart == ["privacy", "review", "train"]
    assert plan.config.train == old.train and plan.config.privacy == old.privacy  # the running values stay
