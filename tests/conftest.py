"""Shared fixtures: tiny random-weight models, synthetic clips, and the shared real assets."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Ultralytics writes settings.json under YOLO_CONFIG_DIR (default ~/.config/Ultralytics) when first imported: point it
# at a temp folder before any test module imports it, so the suite never writes into the user's home.
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="streamlabel-tests-yolo-")
    atexit.register(shutil.rmtree, os.environ["YOLO_CONFIG_DIR"], True)

from tests.fixtures.mosquitto import *  # noqa: F403  (fixtures listed in its __all__)
from tests.fixtures.rtsp import *  # noqa: F403
from tests.fixtures.silent import *  # noqa: F403

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real media and the real YOLO11n of ../shared/assets; skips when that folder is absent."""
    if not (ASSETS / "README.md").is_file():
        pytest.skip(f"real test assets not found at {ASSETS} (they live beside the repository, not in it)")
    return ASSETS


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """Every tiny model, built once per test session and saved to a temp folder."""
    from streamlabel.tiny import build_all

    return build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def scene_clip(tmp_path_factory: pytest.TempPathFactory):
    """A 2 s synthetic clip (10 fps, 320x240) with known truth: (path, truth frames)."""
    from streamlabel.tiny.scene import SceneSpec, write_clip

    path = tmp_path_factory.mktemp("scene") / "scene.mp4"
    truth = write_clip(SceneSpec(seconds=2.0), path)
    return path, truth
