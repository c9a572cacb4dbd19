"""The suite itself keeps out of the user's home: Ultralytics' settings go to a temp YOLO_CONFIG_DIR."""

from __future__ import annotations

import os
from pathlib import Path


def test_ultralytics_settings_live_in_the_temp_config_dir() -> None:
    from ultralytics.utils import SETTINGS

    config_dir = Path(os.environ["YOLO_CONFIG_DIR"]).resolve()
    settings_file = Path(SETTINGS.file).resolve()
    assert config_dir in settings_file.parents, settings_file
    assert Path.home() / ".config" / "Ultralytics" not in settings_file.parents
