"""Stage 4: overlay, prompt and parsing, the Ollama backend against a fake server, and a tiny transformers VLM."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
import torch
from ollama_fake import FakeOllama, Reply, SilentServer

from streamlabel.config import TargetConfig, ValidateModelConfig
from streamlabel.redaction import redact as redact_url
from streamlabel.stages.base import Candidate, ModelUnavailableError, Runtime, ValidatorUnavailableError
from streamlabel.stages.confidence import TokenLogprob
from streamlabel.stages.overlay import CROP_SIDE_PX, crop_box, encode_jpeg, render_views
from streamlabel.stages.prompting import build_prompt, parse_verdict, verdict_schema
from streamlabel.stages.validate import OllamaValidator, TransformersValidator

TARGET = TargetConfig()
NAMES = [c.name for c in TARGET.validation.checks]
ALL_TRUE = dict.fromkeys(NAMES, True)
H, W = 120, 160
PART_BOX = (50, 40, 80, 60)  # x1, y1, x2, y2: a 30 x 20 px mask


def answer(decision: str = "pass", confidence: Any = 0.9, **changes: Any) -> dict[str, Any]:
    obj = {
        "observation": "a dog's open eye",
        "comparison": "the red mask is on the dog's eye",
        "checks": dict(ALL_TRUE),
        "decision": decision,
        "confidence": confidence,
    }
    obj.update(changes)
    return obj


def candidate(anchor: str = "dog", part: str = "eye") -> Candidate:
    x1, y1, x2, y2 = PART_BOX
    mask = np.zeros((1, H, W), bool)
    mask[0, y1:y2, x1:x2] = True
    det = sv.Detections(
        xyxy=np.array([PART_BOX], np.float32), mask=mask, confidence=np.array([0.9]), class_id=np.array([0])
    )
    image = np.full((H, W, 3), 100, np.uint8)
    return Candidate(image, det, np.array([0, 0, W, H], np.float32), anchor, part)


# --------------------------------------------------------------------------------------------- overlay


def test_render_views_paints_the_mask_red_and_zooms_on_the_part() -> None:
    frame, crop = render_views(candidate(), crop_scale=3.0)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    inside, outside = frame[50, 65], frame[10, 10]
    assert inside[0] > inside[1] + 60 and inside[0] > inside[2] + 60  # reddish: red channel dominates
    assert outside.tolist() == [100, 100, 100]  # untouched away from the mask
    # part box 30 x 20 centred at (65, 50) -> 90 px square (20, 5, 110, 95), upscaled to CROP_SIDE_PX
    assert crop.shape == (CROP_SIDE_PX, CROP_SIDE_PX, 3)
    centre = crop[CROP_SIDE_PX // 2, CROP_SIDE_PX // 2]
    assert centre[0] > centre[1] + 60
    assert crop[2, 2].tolist() == [100, 100, 100]


@pytest.mark.parametrize(
    ("xyxy", "scale", "expected"),
    [
        ((50, 40, 80, 60), 3.0, (20, 5, 110, 95)),  # well inside: 90 px square
        ((50, 40, 80, 60), 1.0, (50, 35, 80, 65)),  # scale 1: the longer side, squared
        ((0, 0, 20, 20), 3.0, (0, 0, 40, 40)),  # top-left corner: clipped
        ((150, 110, 160, 120), 2.0, (145, 105, 160, 120)),  # bottom-right corner: clipped
        ((70, 70, 70, 70), 2.0, (69, 69, 71, 71)),  # degenerate box: still a non-empty crop
    ],
)
def test_crop_box(xyxy: tuple[int, ...], scale: float, expected: tuple[int, ...]) -> None:
    assert tuple(crop_box(np.array(xyxy, float), scale, (W, H))) == expected


def test_encode_jpeg_makes_a_jpeg() -> None:
    data = encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    assert data[:2] == b"\xff\xd8"


# --------------------------------------------------------------------------------------------- prompt


def test_prompt_names_the_target_asks_for_observation_before_judging() -> None:
    prompt = build_prompt(TARGET.validation.checks, "cat", "nose")
    assert "{anchor}" not in prompt and "{part}" not in prompt
    assert "the nose of a cat" in prompt
    assert "Image 1" in prompt and "Image 2" in prompt and "red" in prompt
    assert all(f'"{name}"' in prompt for name in NAMES)
    order = [prompt.index(f'"{key}"') for key in ("observation", "comparison", "checks", "decision", "confidence")]
    assert order == sorted(order)


def test_schema_requires_every_field_and_every_check() -> None:
    schema = verdict_schema(NAMES)
    assert schema["required"] == ["observation", "comparison", "checks", "decision", "confidence"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["checks"]["required"] == NAMES
    assert schema["properties"]["decision"]["enum"] == ["pass", "fail"]


# --------------------------------------------------------------------------------------------- parsing

FAILED_MASK = {**ALL_TRUE, "mask_quality": False}


@pytest.mark.parametrize(
    ("text", "passed", "confidence", "reason_has"),
    [
        (json.dumps(answer()), True, 0.9, "mask is on the dog's eye"),
        (json.dumps(answer("fail", 0.7)), False, 0.7, "decided 'fail'"),
        (json.dumps(answer(checks=FAILED_MASK)), False, 0.9, "failed checks: mask_quality"),
        ("Here you go:\n```json\n" + json.dumps(answer()) + "\n```", True, 0.9, "mask is on"),
        (json.dumps(answer(confidence=1.7)), True, 1.0, ""),  # stated confidence is clipped
        (json.dumps(answer(confidence=-0.2)), True, 0.0, ""),
        (json.dumps(answer(decision="PASS")), True, 0.9, ""),
    ],
)
def test_parse_usable_answers(text: str, passed: bool, confidence: float, reason_has: str) -> None:
    verdict = parse_verdict(text, NAMES, model="m", latency_s=0.5)
    assert verdict.passed is passed
    assert verdict.confidence == pytest.approx(confidence)
    assert verdict.confidence_source == "stated"
    assert reason_has in verdict.reason
    assert verdict.observation == "a dog's open eye"
    assert verdict.raw is None and verdict.model == "m" and verdict.latency_s == 0.5


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no JSON object"),
        ("the eye looks fine, pass", "no JSON object"),
        ("[1, 2]", "no JSON object"),
        (json.dumps({k: v for k, v in answer().items() if k != "decision"}), "'decision'"),
        (json.dumps(answer(decision="maybe")), "'decision'"),
        (json.dumps(answer(checks={"anchor_visible": True})), "checks missing: part_visible"),
        (json.dumps(answer(checks={**ALL_TRUE, "no_human": "yes"})), "not true/false: no_human"),
        (json.dumps(answer(confidence="high")), "'confidence'"),
        (json.dumps(answer(confidence=True)), "'confidence'"),
        (json.dumps(answer(observation=None)), "'observation'"),
        ('{"observation": "cut off', "no JSON object"),
    ],
)
def test_parse_malformed_answers_fail_and_keep_the_text(text: str, why: str) -> None:
    verdict = parse_verdict(text, NAMES)
    assert verdict.passed is False and verdict.confidence == 0.0
    assert verdict.reason.startswith("malformed output: ") and why in verdict.reason
    assert verdict.raw == text and verdict.confidence_source == "none"


def test_logprobs_win_over_stated_confidence() -> None:
    reply = Reply.answer(answer(confidence=0.99), {"mask_quality": 0.6})
    logprobs = [
        TokenLogprob(t, p, tuple(top)) for (t, p), top in zip(reply.logprobs or [], reply.top or [], strict=True)
    ]
    verdict = parse_verdict(reply.content, NAMES, logprobs)
    assert verdict.passed and verdict.confidence == pytest.approx(0.6 * 0.99**4)
    assert verdict.confidence_source == "logprobs"


# --------------------------------------------------------------------------------------------- ollama


def ollama(url: str, **changes: Any) -> OllamaValidator:
    settings = {"host": url, "model": "llava:7b", "timeout_s": 5, "retries": 2, **changes}
    cfg = ValidateModelConfig(**settings)
    return OllamaValidator(cfg, TARGET, Runtime(), retry_backoff_s=0)


@pytest.fixture
def fake() -> Any:
    with FakeOllama() as server:
        yield server


def test_ollama_sends_prompt_two_images_schema_and_reads_logprobs(fake: FakeOllama) -> None:
    fake.default = Reply.answer(answer(confidence=0.99), {"mask_quality": 0.75})
    [verdict] = ollama(fake.url).validate([candidate("cat", "nose")])
    assert verdict.passed and verdict.confidence == pytest.approx(0.75 * 0.99**4)
    assert verdict.check_probs["mask_quality"] == pytest.approx(0.75)
    assert verdict.confidence_source == "logprobs" and verdict.model == "llava:7b" and verdict.latency_s > 0
    [request] = fake.requests
    assert request["model"] == "llava:7b" and request["stream"] is False
    assert request["format"] == verdict_schema(NAMES) and request["logprobs"] is True
    assert request["options"]["temperature"] == 0
    [message] = request["messages"]
    assert "the nose of a cat" in message["content"]
    assert len(message["images"]) == 2  # base64 JPEGs: frame and crop
    assert all(image.startswith("/9j/") for image in message["images"])


def test_ollama_without_logprobs_uses_the_stated_confidence(fake: FakeOllama) -> None:
    fake.default = Reply.answer(answer("fail", 0.35))
    [verdict] = ollama(fake.url).validate([candidate()])
    assert not verdict.passed and verdict.confidence == pytest.approx(0.35)
    assert verdict.confidence_source == "stated"


def test_ollama_malformed_answer_is_a_failed_verdict(fake: FakeOllama) -> None:
    fake.default = Reply(content="I think it is an eye.")
    [verdict] = ollama(fake.url).validate([candidate()])
    assert not verdict.passed and verdict.raw == "I think it is an eye."
    assert verdict.reason.startswith("malformed output")


@pytest.mark.parametrize("concurrency", [1, 3])
def test_ollama_empty_input(fake: FakeOllama, concurrency: int) -> None:
    assert ollama(fake.url, concurrency=concurrency).validate([]) == []
    assert fake.requests == []


def test_ollama_server_down_raises_unavailable_after_retries() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ValidatorUnavailableError, match="after 3 attempts"):
        ollama(f"http://127.0.0.1:{port}").validate([candidate()])


@pytest.mark.parametrize("count", [1, 3])
def test_ollama_server_errors_are_retried_then_unavailable(fake: FakeOllama, count: int) -> None:
    fake.default = Reply.server_error()
    with pytest.raises(ValidatorUnavailableError, match="pending"):
        ollama(fake.url, concurrency=3).validate([candidate()] * count)
    assert len(fake.requests) == 3 * count  # per candidate: the first try and 2 retries


def test_ollama_recovers_from_a_transient_error(fake: FakeOllama) -> None:
    fake.script.extend([Reply.server_error(), Reply.server_error()])
    fake.default = Reply.answer(answer())
    [verdict] = ollama(fake.url).validate([candidate()])
    assert verdict.passed and len(fake.requests) == 3


def test_ollama_timeout_counts_as_unavailable(fake: FakeOllama) -> None:
    fake.default = Reply(content="{}", delay_s=5)
    with pytest.raises(ValidatorUnavailableError):
        ollama(fake.url, timeout_s=0.2, retries=0).validate([candidate()])


BUDGET_SLACK_S = 1.0  # thread scheduling and rendering the views on a loaded machine


@pytest.mark.parametrize("count", [1, 3])
def test_ollama_hung_server_gives_up_within_max_wait(count: int) -> None:
    """A server that accepts and never answers: the batch goes pending after max_wait_s, not 4 x timeout_s."""
    with SilentServer() as server:
        validator = ollama(server.url, timeout_s=30, retries=3, max_wait_s=1.5, concurrency=2)
        started = time.monotonic()
        with pytest.raises(ValidatorUnavailableError, match=r"max_wait_s 1\.5.*pending"):
            validator.validate([candidate()] * count)
        elapsed_s = time.monotonic() - started
    assert elapsed_s < 1.5 + BUDGET_SLACK_S
    assert server.connections >= 2  # the start-up probe and at least one verdict request reached it


def test_ollama_retries_are_cut_to_fit_max_wait(fake: FakeOllama) -> None:
    fake.default = Reply.server_error()
    cfg = ValidateModelConfig(host=fake.url, model="llava:7b", timeout_s=30, retries=10, max_wait_s=2.0)
    validator = OllamaValidator(cfg, TARGET, Runtime(), retry_backoff_s=0.25)
    started = time.monotonic()
    with pytest.raises(ValidatorUnavailableError, match="pending"):
        validator.validate([candidate()])
    assert time.monotonic() - started < 2.0 + BUDGET_SLACK_S
    assert 2 <= len(fake.requests) <= 5  # pauses 0.25, 0.5, 1, ...: the budget ends the retries, not 'retries'


def test_ollama_missing_model_names_ollama_pull(fake: FakeOllama) -> None:
    fake.default = Reply.model_not_found("llava:7b")
    with pytest.raises(ModelUnavailableError, match=r"ollama pull llava:7b"):
        ollama(fake.url).validate([candidate()])
    assert len(fake.requests) == 1  # not retried


def test_ollama_startup_probe_finds_the_model() -> None:
    with FakeOllama(models={"llava:7b": ["completion", "vision"]}) as server:
        assert ollama(server.url).probe() is True


def test_ollama_startup_probe_missing_model_is_one_clear_error() -> None:
    with FakeOllama(models={"other:1b": ["completion", "vision"]}) as server:
        with pytest.raises(ModelUnavailableError, match=r"'llava:7b'.*ollama pull llava:7b"):
            ollama(server.url)
        assert server.requests == []  # nothing was asked of a model that is not there


def test_ollama_startup_probe_rejects_a_model_without_vision() -> None:
    with (
        FakeOllama(models={"llava:7b": ["completion"]}) as server,
        pytest.raises(ModelUnavailableError, match="cannot read images"),
    ):
        ollama(server.url)


def test_ollama_down_at_startup_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    validator = ollama(f"http://user:secret@127.0.0.1:{port}")
    assert validator.probe() is False
    assert "not reachable at start-up" in caplog.text and "secret" not in caplog.text


def test_ollama_keeps_input_order_with_concurrency(fake: FakeOllama) -> None:
    all_in = threading.Event()
    first_saw_all_in: list[bool] = []

    def respond(body: dict[str, Any]) -> Reply:
        if len(fake.requests) >= 3:
            all_in.set()
        content = body["messages"][0]["content"]
        if "the eye of a dog" in content:  # the first candidate answers last, once all three are in flight
            first_saw_all_in.append(all_in.wait(timeout=5))
            return Reply.answer(answer("pass", 0.9))
        return Reply.answer(answer("fail", 0.1 if "nose" in content else 0.2))

    fake.default = respond
    items = [candidate("dog", "eye"), candidate("dog", "nose"), candidate("cat", "ear")]
    verdicts = ollama(fake.url, concurrency=3).validate(items)
    assert first_saw_all_in == [True]  # three requests were in flight at once
    assert [(v.passed, v.confidence) for v in verdicts] == [(True, 0.9), (False, 0.1), (False, 0.2)]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("https://bob:s3cret@gpu.lan:11434/", "https://bob:***@gpu.lan:11434/"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --------------------------------------------------------------------------------------------- transformers

TINY_ANSWER_TOKENS = 96  # the constrained verdict object with the tiny tokenizer, strings of a few tokens


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamlabel.tiny.vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("vlm"))


@pytest.mark.slow
def test_tiny_transformers_vlm_answers_always_parse_with_per_check_confidence(tiny_vlm: Path) -> None:
    """Random weights, constrained to the verdict's JSON: every answer parses, and some pass."""
    cfg = ValidateModelConfig(kind="transformers", model=str(tiny_vlm), max_new_tokens=TINY_ANSWER_TOKENS)
    validator = TransformersValidator(cfg, TARGET, Runtime())
    assert validator.model_id == str(tiny_vlm)
    assert validator.validate([]) == []
    verdicts = validator.validate([candidate(), candidate("cat", "nose")])
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert verdict.raw is None and not verdict.reason.startswith("malformed"), verdict.raw
        assert set(verdict.checks) == set(NAMES) and verdict.confidence_source == "logprobs"
        assert set(verdict.check_probs) == set(NAMES) and all(0 < p < 1 for p in verdict.check_probs.values())
        p_all_true = math.prod(verdict.check_probs.values())
        assert verdict.confidence == pytest.approx(p_all_true if verdict.passed else 1 - p_all_true)
        assert verdict.model == str(tiny_vlm) and verdict.latency_s > 0
    assert any(v.passed for v in verdicts)
    assert validator.tokens_generated <= 2 * TINY_ANSWER_TOKENS
    # the per-token logprobs that confidence is read from line up with the decoded answer
    text, logprobs = validator._ask("describe", render_views(candidate(), cfg.crop_scale))
    assert list(json.loads(text)) == ["observation", "comparison", "checks", "decision", "confidence"]
    assert logprobs and "".join(t.token for t in logprobs) == text
    assert all(t.logprob <= 0 and t.top for t in logprobs)


def test_transformers_missing_model_is_model_unavailable(tmp_path: Path) -> None:
    cfg = ValidateModelConfig(kind="transformers", model=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelUnavailableError, match="no-such-model"):
        TransformersValidator(cfg, TARGET, Runtime())


def test_transformers_too_few_new_tokens_is_one_clear_error(tiny_vlm: Path) -> None:
    cfg = ValidateModelConfig(kind="transformers", model=str(tiny_vlm), max_new_tokens=32)
    with pytest.raises(ValueError, match=r"max_new_tokens is 32.*raise it to at least"):
        TransformersValidator(cfg, TARGET, Runtime())


@pytest.mark.slow
def test_tiny_transformers_vlm_in_bfloat16(tiny_vlm: Path) -> None:
    """The reduced-precision path ('auto' is bfloat16 on CUDA), run on the CPU with an explicit dtype."""
    cfg = ValidateModelConfig(kind="transformers", model=str(tiny_vlm), max_new_tokens=TINY_ANSWER_TOKENS)
    validator = TransformersValidator(cfg, TARGET, Runtime(device="cpu", dtype="bfloat16"))
    assert validator._model.dtype == torch.bfloat16
    inputs = validator._inputs("describe", render_views(candidate(), cfg.crop_scale))
    assert inputs["pixel_values"].dtype == torch.bfloat16
    (verdict,) = validator.validate([candidate()])
    assert verdict.raw is None and verdict.confidence_source == "logprobs"  # parsed, never an exception
    assert all(math.isfinite(p) for p in verdict.check_probs.values()) and len(verdict.check_probs) == len(NAMES)


def test_an_outage_is_one_warning_not_one_per_attempt_and_round(
    fake: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    """The pending retry asks an absent server every few seconds: one WARNING per outage, one INFO when it is back."""
    validator = ollama(fake.url)
    fake.default = Reply.server_error()
    caplog.set_level(logging.DEBUG, logger="streamlabel.stages.validate")
    for _ in range(3):  # three retry rounds of three attempts each
        with pytest.raises(ValidatorUnavailableError):
            validator.validate([candidate()])
    attempts = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert len(attempts) == 9 and [r.levelno for r in attempts].count(logging.WARNING) == 1
    assert "further failures are logged at DEBUG" in attempts[0].getMessage()
    fake.default = Reply.answer(answer())
    validator.validate([candidate()])
    back = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.INFO
    fake.default = Reply.server_error()
    with pytest.raises(ValidatorUnavailableError):
        validator.validate([candidate()])
    warnings = [r for r in caplog.records if "failed (attempt" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 2  # a new outage warns again
