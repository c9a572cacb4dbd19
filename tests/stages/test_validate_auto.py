"""``validate.kind: auto``: Ollama when it answers, the local model in process when not, Ollama + warning otherwise."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from ollama_fake import FakeOllama

from streamlabel.config import Config, TargetConfig, ValidateModelConfig
from streamlabel.models import _pull_validate
from streamlabel.stages.base import Candidate, Runtime, ValidatorUnavailableError, backend_factory
from streamlabel.stages.validate import OllamaValidator, TransformersValidator
from streamlabel.stages.validate_auto import auto_validator, local_model_path, ollama_answers
from tests.fixtures.openai_server import FakeOpenAI

TARGET = TargetConfig()
LOGGERS = ("streamlabel.stages.validate_auto", "streamlabel.stages.validate")


def free_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def auto(host: str, local_model: str | Path, **changes: Any) -> Any:
    cfg = ValidateModelConfig(host=host, local_model=str(local_model), model="llava:7b", **changes)
    return auto_validator(cfg, TARGET, Runtime())


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name in LOGGERS and r.levelno == level]


def candidate() -> Candidate:
    mask = np.zeros((1, 60, 80), bool)
    mask[0, 20:30, 30:50] = True
    det = sv.Detections(xyxy=np.array([[30, 20, 50, 30]], np.float32), mask=mask, class_id=np.array([0]))
    return Candidate(np.full((60, 80, 3), 90, np.uint8), det, np.array([0, 0, 80, 60], np.float32), "dog", "eye")


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamlabel.tiny.vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("vlm"))


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def test_auto_is_the_default_and_a_registered_backend() -> None:
    assert ValidateModelConfig().kind == "auto"
    assert Config().models.validate_.kind == "auto"
    assert backend_factory("validate", "auto") is auto_validator


def test_ollama_answers(fake_ollama: FakeOllama) -> None:
    assert ollama_answers(fake_ollama.url) == (True, "version 0.0.0-fake")
    down, why = ollama_answers(free_url())
    assert not down and "ConnectError" in why
    with FakeOpenAI() as other:  # an HTTP server that is not Ollama does not count
        root = other.url.removesuffix("/v1")
        assert ollama_answers(root) == (False, "GET /api/version answered HTTP 404")


def test_local_model_path(tiny_vlm: Path, tmp_path: Path) -> None:
    assert local_model_path(str(tiny_vlm)) == tiny_vlm
    assert local_model_path(str(tmp_path / "absent")) is None
    assert local_model_path("nobody-here/no-such-vlm") is None  # not in the cache (and the tests are offline)


def test_picks_ollama_when_it_answers(
    fake_ollama: FakeOllama, tiny_vlm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    validator = auto(fake_ollama.url, tiny_vlm)  # the local model is there too: Ollama still wins
    assert isinstance(validator, OllamaValidator) and validator.model_id == "llava:7b"
    [line] = records(caplog, logging.INFO)
    assert f"Ollama at {fake_ollama.url} answers" in line and "llava:7b" in line
    assert records(caplog, logging.WARNING) == []


def test_picks_the_local_model_when_nothing_listens(tiny_vlm: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host = free_url()
    validator = auto(host, tiny_vlm, max_new_tokens=128)
    assert isinstance(validator, TransformersValidator) and validator.model_id == str(tiny_vlm)
    [line] = records(caplog, logging.INFO)
    assert f"Ollama at {host} does not answer" in line and f"local model {tiny_vlm}" in line
    assert records(caplog, logging.WARNING) == []


@pytest.mark.slow
def test_the_local_model_picked_judges_in_process(tiny_vlm: Path) -> None:
    validator = auto(free_url(), tiny_vlm, max_new_tokens=128)
    [verdict] = validator.validate([candidate()])  # an answer (noise from random weights), not an exception
    assert verdict.model == str(tiny_vlm) and verdict.latency_s > 0


@pytest.mark.parametrize("present", [False, True])
def test_neither_there_picks_ollama_with_one_warning_naming_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, present: bool
) -> None:
    local = tmp_path / "not-a-model"
    if present:  # a folder that is there but does not load counts as missing, with why
        local.mkdir()
    host = free_url().replace("http://", "http://me:pw-secret@")
    validator = auto(host, local, retries=0, timeout_s=1)
    assert isinstance(validator, OllamaValidator)
    [warning] = records(caplog, logging.WARNING)  # one, not also the Ollama backend's own
    assert "does not answer" in warning and str(local) in warning
    assert "ollama serve" in warning and "streamlabel models pull" in warning
    assert ("did not load" in warning) is present
    assert "pw-secret" not in caplog.text
    with pytest.raises(ValidatorUnavailableError, match="pending"):  # candidates wait for Ollama
        validator.validate([candidate()])


def test_models_pull_follows_the_same_choice(tiny_vlm: Path) -> None:
    cfg = Config.model_validate({"models": {"validate": {"host": free_url(), "local_model": str(tiny_vlm)}}})
    assert _pull_validate(cfg).endswith(f"local folder {tiny_vlm}")
    cfg = Config.model_validate({"models": {"validate": {"kind": "openai", "base_url": "http://u:pw@gpu:8000/v1"}}})
    assert _pull_validate(cfg) == "nothing to fetch: the server at http://u:***@gpu:8000/v1 loads gemma4:e4b itself"
