"""``streamlabel models check`` lists every configured model at once; ``models pull`` never says "run models pull"."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.models import fetch_failure
from streamlabel.stages.base import ModelUnavailableError
from tests.stages.ollama_fake import FakeOllama


def write_config(tmp_path: Path, validate: dict, *, with_ground: bool = True) -> Path:
    (tmp_path / "yolo.pt").write_bytes(b"weights")
    (tmp_path / "sam2.yaml").write_text("model: {}\n")
    (tmp_path / "sam2.pt").write_bytes(b"ckpt")
    if with_ground:
        (tmp_path / "gdino").mkdir()
    cfg = {
        "models": {
            "detect": {"weights": str(tmp_path / "yolo.pt")},
            "ground": {"model": str(tmp_path / "gdino")},
            "segment": {"config": str(tmp_path / "sam2.yaml"), "checkpoint": str(tmp_path / "sam2.pt")},
            "validate": validate,
        },
        "store": {"path": str(tmp_path / "store")},
    }
    path = tmp_path / "streamlabel.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_check(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["models", "check", "-c", str(config)], terminal_width=200)
    return result.exit_code, result.output


def test_every_model_found_exits_0(tmp_path: Path) -> None:
    with FakeOllama(models={"gemma4:e4b": ["completion", "vision"]}) as fake:
        code, out = run_check(write_config(tmp_path, {"kind": "ollama", "host": fake.url, "model": "gemma4:e4b"}))
    assert code == 0, out
    assert out.count("│ found ") == 4 and "│ missing " not in out


def test_every_missing_model_is_listed_in_one_run(tmp_path: Path) -> None:
    with FakeOllama(models={"other:1b": ["vision"]}) as fake:
        config = write_config(tmp_path, {"kind": "ollama", "host": fake.url, "model": "gemma4:e4b"}, with_ground=False)
        code, out = run_check(config)
    assert code == 3, out
    assert "2 of 4 models missing: ground, validate" in out
    assert "ollama pull gemma4:e4b" in out  # the fix for the model the server lacks
    assert out.count("│ found ") == 2  # detect and segment are still reported


def test_unreachable_ollama_is_missing_with_its_fix(tmp_path: Path) -> None:
    with FakeOllama() as fake:
        url = fake.url  # closed when the block ends: connection refused
    code, out = run_check(write_config(tmp_path, {"kind": "ollama", "host": url, "model": "gemma4:e4b"}))
    assert code == 3 and "does not answer" in out and "start it" in out


def test_pull_failure_does_not_tell_the_user_to_pull() -> None:
    exc = ModelUnavailableError("detect", "yolo11m.pt", "/srv/yolo11m.pt", "Download failure: offline")
    assert "models pull" in str(exc)  # the daemon's message does tell the fix
    text = fetch_failure(exc)
    assert "models pull" not in text and "Download failure: offline" in text
