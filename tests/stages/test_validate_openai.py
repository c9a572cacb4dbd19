"""The ``openai`` validator backend against a fake OpenAI-compatible server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import supervision as sv

from streamlabel.config import TargetConfig, ValidateModelConfig, parse
from streamlabel.stages.base import Candidate, ModelUnavailableError, ValidatorUnavailableError, backend_factory
from streamlabel.stages.confidence import TOP_LOGPROBS
from streamlabel.stages.prompting import verdict_schema
from streamlabel.stages.validate_openai import OpenAIValidator, ValidatorAuthError
from tests.fixtures.openai_server import FakeOpenAI, OpenAIReply

TARGET = TargetConfig()
NAMES = [c.name for c in TARGET.validation.checks]
SECRET = "sk-test-9f8e7d6c5b4a"
H, W = 120, 160


def answer(decision: str = "pass", confidence: float = 0.9) -> dict[str, Any]:
    return {
        "observation": "a dog's open eye",
        "comparison": "the red mask is on the dog's eye",
        "checks": dict.fromkeys(NAMES, True),
        "decision": decision,
        "confidence": confidence,
    }


def candidate(anchor: str = "dog", part: str = "eye") -> Candidate:
    mask = np.zeros((1, H, W), bool)
    mask[0, 40:60, 50:80] = True
    det = sv.Detections(xyxy=np.array([[50, 40, 80, 60]], np.float32), mask=mask, class_id=np.array([0]))
    return Candidate(np.full((H, W, 3), 100, np.uint8), det, np.array([0, 0, W, H], np.float32), anchor, part)


def validator(url: str, **changes: Any) -> OpenAIValidator:
    settings = {"kind": "openai", "base_url": url, "model": "vlm", "timeout_s": 5, "retries": 2, **changes}
    return OpenAIValidator(ValidateModelConfig(**settings), TARGET, retry_backoff_s=0)


def free_port() -> int:
    with socket.socket() as sock:  # free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_openai_is_a_registered_backend() -> None:
    assert backend_factory("validate", "openai") is OpenAIValidator


def test_passing_verdict_with_logprobs_and_the_request_it_sent(fake: FakeOpenAI) -> None:
    fake.default = OpenAIReply.answer(answer(confidence=0.99), check_prob=0.9)
    [verdict] = validator(fake.url, max_new_tokens=200).validate([candidate("cat", "nose")])
    assert verdict.passed and verdict.confidence_source == "logprobs"
    assert verdict.check_probs == pytest.approx(dict.fromkeys(NAMES, 0.9))  # from the top_logprobs alternatives
    assert verdict.confidence == pytest.approx(0.9 ** len(NAMES))
    assert verdict.model == "vlm" and verdict.latency_s > 0
    [body] = fake.requests
    assert body["model"] == "vlm" and body["temperature"] == 0 and body["max_tokens"] == 200
    assert body["logprobs"] is True and body["top_logprobs"] == TOP_LOGPROBS
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": verdict_schema(NAMES), "strict": True},
    }
    [message] = body["messages"]
    images = [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]
    texts = [part["text"] for part in message["content"] if part["type"] == "text"]
    assert len(images) == 2 and all(url.startswith("data:image/jpeg;base64,/9j/") for url in images)
    assert len(texts) == 1 and "the nose of a cat" in texts[0]
    assert "Authorization" not in fake.headers[0]  # no key configured: no header


def test_without_logprobs_the_stated_confidence_is_used(fake: FakeOpenAI) -> None:
    fake.default = OpenAIReply.answer(answer("fail", 0.35))
    [verdict] = validator(fake.url).validate([candidate()])
    assert not verdict.passed and verdict.confidence == pytest.approx(0.35)
    assert verdict.confidence_source == "stated"


@pytest.mark.parametrize("content", ["I think it is an eye.", None, '{"observation": "cut off'])
def test_malformed_answer_is_a_failed_verdict_with_raw_kept(fake: FakeOpenAI, content: str | None) -> None:
    fake.default = OpenAIReply(content=content)
    [verdict] = validator(fake.url).validate([candidate()])
    assert not verdict.passed and verdict.confidence == 0.0
    assert verdict.reason.startswith("malformed output") and verdict.raw == (content or "")
    assert len(fake.requests) == 1  # an answer, even a useless one, is not retried


@pytest.mark.parametrize(
    "first", [OpenAIReply.http_error(503), OpenAIReply.http_error(429), OpenAIReply(raw_body="<html>bad gateway")]
)
def test_transient_failure_is_retried_then_ok(fake: FakeOpenAI, first: OpenAIReply) -> None:
    fake.script.append(first)
    fake.default = OpenAIReply.answer(answer())
    [verdict] = validator(fake.url).validate([candidate()])
    assert verdict.passed and len(fake.requests) == 2


@pytest.mark.parametrize("count", [1, 3])
def test_server_errors_exhaust_retries_then_unavailable(fake: FakeOpenAI, count: int) -> None:
    fake.default = OpenAIReply.http_error(503, "engine is overloaded")
    with pytest.raises(ValidatorUnavailableError, match=r"after 3 attempts.*pending"):
        validator(fake.url, concurrency=3).validate([candidate()] * count)
    assert len(fake.requests) == 3 * count


def test_bad_request_is_not_retried(fake: FakeOpenAI) -> None:
    fake.default = OpenAIReply.http_error(400, "response_format json_schema is not supported")
    with pytest.raises(ValidatorUnavailableError, match=r"HTTP 400.*json_schema is not supported"):
        validator(fake.url).validate([candidate()])
    assert len(fake.requests) == 1


def test_model_gone_after_start_up_is_model_unavailable(fake: FakeOpenAI) -> None:
    checker = validator(fake.url)
    fake.models = ["other"]
    with pytest.raises(ModelUnavailableError, match=r"HTTP 404.*does not exist.*base_url"):
        checker.validate([candidate()])
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("settings", "tries", "min_s", "max_s"),
    [
        ({"timeout_s": 0.3, "retries": 1}, 2, 0.6, 3.0),  # two attempts of 0.3 s
        ({"timeout_s": 30, "retries": 3, "max_wait_s": 0.5}, 1, 0.5, 2.5),  # max_wait_s cuts the one attempt short
    ],
)
def test_never_answering_server_is_unavailable_within_the_timeout(
    settings: dict[str, Any], tries: int, min_s: float, max_s: float
) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        checker = validator(f"http://127.0.0.1:{port}/v1", **settings)  # the start-up probe times out too
        started = time.monotonic()
        with pytest.raises(ValidatorUnavailableError, match=rf"after {tries} attempts? in"):
            checker.validate([candidate()])
        elapsed_s = time.monotonic() - started
    assert min_s <= elapsed_s < max_s


def test_server_down_at_start_up_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    checker = validator(f"http://user:pw-in-url@127.0.0.1:{free_port()}/v1")
    assert checker.probe() is False
    assert "not reachable at start-up" in caplog.text and "pw-in-url" not in caplog.text


def test_start_up_probe_finds_the_model_or_names_what_is_served() -> None:
    with FakeOpenAI(models=["qwen3-vl", "vlm"]) as server:
        assert validator(server.url).probe() is True
    with FakeOpenAI(models=["qwen3-vl"]) as server:
        with pytest.raises(ModelUnavailableError, match=r"'vlm'.*serves qwen3-vl.*vllm serve vlm"):
            validator(server.url)
        assert server.requests == []


def test_api_key_is_sent_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore debug lines included
    with FakeOpenAI(api_key=SECRET) as server:
        server.script.append(OpenAIReply.http_error(500, "boom"))
        server.default = OpenAIReply.answer(answer())
        checker = validator(server.url, api_key=SECRET)
        [verdict] = checker.validate([candidate()])
    assert verdict.passed
    assert [h["Authorization"] for h in server.headers] == [f"Bearer {SECRET}"] * 2
    assert "attempt 1 of 3" in caplog.text  # the retry was logged ...
    assert SECRET not in caplog.text  # ... without the key
    assert SECRET not in repr(checker.cfg)


@pytest.mark.parametrize("key", [None, "sk-wrong-key-123"])
def test_refused_key_is_one_clear_error_naming_the_setting(key: str | None) -> None:
    with (
        FakeOpenAI(api_key=SECRET) as server,
        pytest.raises(ValidatorAuthError, match=r"HTTP 401.*models\.validate\.api_key") as info,
    ):
        validator(server.url, api_key=key)
    assert isinstance(info.value, ModelUnavailableError)  # the daemon's start-up reports it and exits
    assert "sk-wrong-key-123" not in str(info.value)


def test_api_key_comes_from_the_environment_and_stays_out_of_dumps() -> None:
    text = "models:\n  validate:\n    kind: openai\n    api_key: ${VLM_KEY}\n"
    cfg = parse(text, "test.yml", {"VLM_KEY": SECRET})
    key = cfg.models.validate_.api_key
    assert key is not None and key.get_secret_value() == SECRET
    assert SECRET not in json.dumps(cfg.model_dump(mode="json", by_alias=True))  # what the manifest stores


def test_requests_run_concurrency_at_a_time_and_keep_input_order(fake: FakeOpenAI) -> None:
    three_in = threading.Event()

    def respond(body: dict[str, Any]) -> OpenAIReply:
        if fake.in_flight >= 3:
            three_in.set()
        three_in.wait(timeout=5)  # hold the first three until all of them are in flight
        text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
        return OpenAIReply.answer(answer("pass" if "of a dog" in text else "fail", 0.5))

    fake.default = respond
    items = [candidate("dog"), candidate("cat"), candidate("dog"), candidate("fox"), candidate("dog")]
    verdicts = validator(fake.url, concurrency=3).validate(items)
    assert three_in.is_set() and fake.max_in_flight == 3  # parallel, and never more than asked
    assert [v.passed for v in verdicts] == [True, False, True, False, True]
    assert validator(fake.url, concurrency=3).validate([]) == []
