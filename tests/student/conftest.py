"""Tiny random-weight YOLO-seg students (one class, ``eye``), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_students(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``finding``: a student that returns boxes with masks on any image; ``blind``: one that finds nothing."""
    from streamlabel.tiny.student import build_tiny_student

    folder = tmp_path_factory.mktemp("students")
    return {"finding": build_tiny_student(folder), "blind": build_tiny_student(folder, finds=False)}
