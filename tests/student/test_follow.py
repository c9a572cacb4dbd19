"""``models.student: promoted``: the daemon's student follows the store's promoted run (docs/student.md)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.config.student import StudentConfig
from streamlabel.stages.base import Runtime
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.trained_models import ModelRuns
from streamlabel.student import Student, StudentUnavailableError, load_student
from streamlabel.student.follow import PromotedFinder
from streamlabel.train.runs import best_weights
from tests.scripted import frame_image

IMAGES = [frame_image(i, height=120, width=200) for i in range(2)]


def add_run(runs: ModelRuns, root: Path, run_id: str, weights: Path | bytes) -> None:
    """A finished run of the store whose best.pt is ``weights`` (a file copied, or raw bytes)."""
    target = best_weights(root, run_id)
    target.parent.mkdir(parents=True)
    if isinstance(weights, bytes):
        target.write_bytes(weights)
    else:
        shutil.copy(weights, target)
    runs.start(run_id, "yolo11n-seg.yaml", "hash", 1)
    runs.finish(run_id, {}, str(target))


@pytest.fixture
def store(tmp_path: Path):
    s = DatasetStore(tmp_path / "store", ["eye"])
    yield s
    s.close()


def test_the_student_follows_the_promoted_run(store, tiny_students, caplog: pytest.LogCaptureFixture) -> None:
    root, runs = store.root, ModelRuns(store.manifest)
    add_run(runs, root, "20260101T000000Z-0001", tiny_students["blind"])
    add_run(runs, root, "20260102T000000Z-0002", tiny_students["finding"])
    add_run(runs, root, "20260103T000000Z-0003", b"corrupt")
    runs.promote("20260101T000000Z-0001")
    now = [0.0]
    cfg = StudentConfig(model="promoted", check_s=10, imgsz=160)
    finder = PromotedFinder(cfg, root, "eye", Runtime(), 1.0, clock=lambda: now[0])
    assert finder.run_id == "20260101T000000Z-0001"
    assert [len(d) for d in finder.find(IMAGES)] == [0, 0]  # the blind student
    runs.promote("20260102T000000Z-0002")
    now[0] = 9.0
    assert [len(d) for d in finder.find(IMAGES)] == [0, 0]  # not looked again yet
    now[0] = 10.0
    assert all(len(d) > 0 for d in finder.find(IMAGES)) and finder.run_id == "20260102T000000Z-0002"
    runs.promote("20260103T000000Z-0003")
    now[0] = 20.0
    with caplog.at_level(logging.WARNING, logger="streamlabel.student.follow"):
        assert all(len(d) > 0 for d in finder.find(IMAGES))  # the broken run is not taken
    assert finder.run_id == "20260102T000000Z-0002"
    assert any("20260103T000000Z-0003 cannot be used" in r.getMessage() for r in caplog.records)


def test_no_promoted_run_means_no_student_yet(store) -> None:
    ModelRuns(store.manifest)
    cfg = Config.model_validate({"models": {"student": {"model": "promoted", "gate": True}}})
    student = load_student(cfg, Runtime(), store_root=store.root)
    assert isinstance(student, Student)
    assert student.find(IMAGES) is None  # the Labeler then labels as without a student
    assert student.opened(None, 2) == [True, True] and student.counts["errors"] == 0


def test_a_broken_promoted_run_stops_the_start(store) -> None:
    runs = ModelRuns(store.manifest)
    add_run(runs, store.root, "20260103T000000Z-0003", b"corrupt")
    runs.promote("20260103T000000Z-0003")
    cfg = Config.model_validate({"models": {"student": "promoted"}})
    with pytest.raises(StudentUnavailableError, match="20260103T000000Z-0003"):
        load_student(cfg, Runtime(), store_root=store.root)
