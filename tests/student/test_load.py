"""A student that cannot be used stops the start with a message naming it and the fix (never a crash mid-run);
a usable one runs through Ultralytics, batched, with masks at the frame's size."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from streamlabel.config import Config
from streamlabel.frames import POLYGON_KEY, Frame
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.student import StudentUnavailableError, load_student
from streamlabel.tiny import TinyModels, tiny_config_dict
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter, frame_image


def config(student: str | None, store: Path, **extra: object) -> Config:
    return Config.model_validate({"models": {"student": {"model": student, **extra}}, "store": {"path": str(store)}})


def failure(student: str, store: Path) -> str:
    with pytest.raises(StudentUnavailableError) as caught:
        load_student(config(student, store), Runtime())
    assert isinstance(caught.value, ModelUnavailableError)  # what the daemon and the CLI stop the start with
    return str(caught.value)


def test_no_student_configured_loads_nothing(tmp_path: Path) -> None:
    assert load_student(config(None, tmp_path), Runtime()) is None
    shorthand = Config.model_validate({"models": {"student": "20260101T000000Z-abcd"}})
    assert shorthand.models.student.model == "20260101T000000Z-abcd" and not shorthand.models.student.gate


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    message = failure(str(tmp_path / "nope.pt"), tmp_path)
    assert "nope.pt" in message and "no such weights file" in message and "models.student" in message


def test_an_unknown_run_id_names_the_store(tmp_path: Path) -> None:
    message = failure("20260101T000000Z-beef", tmp_path)
    assert "20260101T000000Z-beef" in message and str(tmp_path) in message and "streamlabel train" in message


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    message = failure(str(broken), tmp_path)
    assert "broken.pt" in message and "does not load" in message and "streamlabel train" in message


def test_a_detection_model_is_not_a_student(tmp_path: Path) -> None:
    from streamlabel.tiny.yolo import build_tiny_yolo

    detector = build_tiny_yolo(tmp_path / "yolo")
    message = failure(str(detector), tmp_path)
    assert "'detect' model, not 'segment'" in message


def test_a_student_without_the_part_among_its_classes(tmp_path: Path) -> None:
    from ultralytics import YOLO

    coco = tmp_path / "coco-seg.pt"
    YOLO("yolo11n-seg.yaml", task="segment").save(str(coco))  # 80 numbered classes, none named 'eye'
    message = failure(str(coco), tmp_path)
    assert "none of its 80 classes is named 'eye'" in message


def test_a_tiny_student_finds_parts_with_frame_sized_masks(tmp_path: Path, tiny_students) -> None:
    student = load_student(config(str(tiny_students["finding"]), tmp_path, imgsz=160, max_det=5), Runtime())
    assert student is not None
    images = [frame_image(i, height=120, width=200) for i in range(3)]
    found = student.find(images)
    assert found is not None and len(found) == 3
    for d in found:
        assert 0 < len(d) <= 5 and d.mask is not None and d.mask.shape[1:] == (120, 200)
        assert (d.confidence >= 0.25).all()
        assert all(len(p) >= 3 for p in d.data[POLYGON_KEY])
        assert d.mask.reshape(len(d), -1).any(axis=1).all()  # every kept find has a mask


def test_a_blind_student_gates_every_frame_and_grounding_is_never_called(tmp_path: Path, tiny_students) -> None:
    cfg = config(str(tiny_students["blind"]), tmp_path, imgsz=160, gate=True)
    student = load_student(cfg, Runtime())
    grounder, validator = ScriptedGrounder(), CountingValidator()
    dog = {i: [[20.0, 30.0, 80.0, 80.0]] for i in range(4)}
    stages = Stages(ScriptedDetector(dog), grounder, ScriptedSegmenter(), validator, student)  # type: ignore[arg-type]
    frames = [Frame("kitchen", i, i * 0.2, datetime(2026, 1, 1, i, tzinfo=UTC), frame_image(i)) for i in range(4)]
    results = Labeler(cfg, stages).label(frames)
    assert grounder.grounded == [] and validator.judged == 0
    assert [len(r.parts) for r in results] == [0] * 4 and [len(r.anchors) for r in results] == [1] * 4


@pytest.mark.slow
def test_the_cli_stops_at_start_up_with_a_broken_student(tmp_path: Path, tiny_models: TinyModels, scene_clip) -> None:
    clip, _ = scene_clip
    broken = tmp_path / "student.pt"
    broken.write_bytes(b"\x00" * 64)
    cfg = tiny_config_dict(tiny_models, tmp_path / "store", {})
    cfg["target"]["validation"]["enabled"] = False
    cfg["models"]["student"] = str(broken)
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "streamlabel.cli", "label", f"kitchen={clip}", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
    out = " ".join((run.stdout + run.stderr).split())
    assert "student.pt" in out and "does not load" in out and "Traceback" not in out
    assert not (tmp_path / "store" / "manifest.sqlite").exists()  # it stopped before opening the store
