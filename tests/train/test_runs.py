"""Naming a student: run ids, paths, the promoted run (the contract with the daemon's student loader)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamlabel.store.manifest import Manifest
from streamlabel.store.trained_models import ModelRuns
from streamlabel.train.runs import (
    UnknownStudentError,
    best_weights,
    current_student,
    new_run_id,
    resolve_student,
)


def _finished_run(root: Path, runs: ModelRuns, run_id: str) -> Path:
    weights = best_weights(root, run_id)
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    runs.start(run_id, "yolo11n-seg.yaml", "abc", 3)
    runs.finish(run_id, {"val": {}}, str(weights.relative_to(root)))
    return weights


def test_run_id_is_utc_time_and_suffix() -> None:
    run_id = new_run_id(datetime(2026, 12, 2, 0, 45, 1, tzinfo=UTC))
    assert re.fullmatch(r"20261202T004501Z-[0-9a-f]{4}", run_id)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", new_run_id())


def test_resolve_run_id_and_paths(tmp_path: Path) -> None:
    runs = ModelRuns(Manifest(tmp_path / "manifest.sqlite"))
    weights = _finished_run(tmp_path, runs, "20261202T000000Z-aaaa")
    assert resolve_student(tmp_path, "20261202T000000Z-aaaa") == weights
    pt = tmp_path / "elsewhere.pt"
    pt.write_bytes(b"x")
    assert resolve_student(tmp_path, str(pt)) == pt
    assert resolve_student(tmp_path, "yolo11n-seg.yaml") == Path("yolo11n-seg.yaml")


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("", "empty"),
        ("missing.pt", "nothing is downloaded"),
        ("20990101T000000Z-ffff", "finished runs: 20261202T000000Z-aaaa"),
        ("20261202T000000Z-bbbb", "failed (out of disk)"),
    ],
)
def test_unknown_refs_name_where_and_fix(tmp_path: Path, ref: str, says: str) -> None:
    runs = ModelRuns(Manifest(tmp_path / "manifest.sqlite"))
    _finished_run(tmp_path, runs, "20261202T000000Z-aaaa")
    runs.start("20261202T000000Z-bbbb", "yolo11n-seg.yaml", "abc", 3)
    runs.fail("20261202T000000Z-bbbb", "out of disk")
    with pytest.raises(UnknownStudentError, match=re.escape(says)) as err:
        resolve_student(tmp_path, ref)
    assert isinstance(err.value, ValueError)


def test_unknown_run_without_manifest_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnknownStudentError, match="finished runs: none"):
        resolve_student(tmp_path, "20261202T000000Z-aaaa")
    assert not (tmp_path / "manifest.sqlite").exists()
    assert current_student(tmp_path) is None


def test_current_student_is_the_one_promoted(tmp_path: Path) -> None:
    runs = ModelRuns(Manifest(tmp_path / "manifest.sqlite"))
    _finished_run(tmp_path, runs, "20261202T000000Z-aaaa")
    _finished_run(tmp_path, runs, "20261202T010000Z-cccc")
    assert current_student(tmp_path) is None
    runs.promote("20261202T000000Z-aaaa")
    assert current_student(tmp_path) == "20261202T000000Z-aaaa"
    runs.promote("20261202T010000Z-cccc")
    assert current_student(tmp_path) == "20261202T010000Z-cccc"
    assert runs.promoted() == "20261202T010000Z-cccc"
