"""Per-check probabilities from token log-probabilities, the verdict's confidence from them, and the Ollama side:
``top_logprobs`` asked for, the stated-confidence fallback said once, an old server's version named."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np
import pytest
import supervision as sv
from ollama_fake import FakeOllama, Reply

from streamlabel.config import TargetConfig, ValidateModelConfig
from streamlabel.frames import LabelStatus, verdict_status
from streamlabel.stages.base import Candidate, Runtime
from streamlabel.stages.confidence import (
    TOP_LOGPROBS,
    TokenLogprob,
    boolean_of,
    check_probabilities,
    combined_confidence,
    probability_true,
)
from streamlabel.stages.prompting import parse_verdict
from streamlabel.stages.validate import OllamaValidator

TARGET = TargetConfig()
NAMES = [c.name for c in TARGET.validation.checks]
REVIEW_THRESHOLD = TARGET.validation.review_threshold  # 0.8
LOG = "streamlabel.stages.validate"


def answer(**checks: bool) -> dict[str, Any]:
    return {
        "observation": "a dog's open eye",
        "comparison": "the red mask is on the dog's eye",
        "checks": {name: checks.get(name, True) for name in NAMES},
        "decision": "pass" if all(checks.get(name, True) for name in NAMES) else "fail",
        "confidence": 0.95,
    }


def lp(p: float) -> float:
    return math.log(p)


# --------------------------------------------------------------------------------------------- spelling


@pytest.mark.parametrize(
    ("token", "before", "expected"),
    [
        (" true", "", True),
        ("true", "", True),
        ("True", "", True),
        ("tr", "", True),
        ("t", "", True),
        ("true,", "", True),
        (" false", "", False),
        ("f", "", False),
        ("FALSE", "", False),
        (":true", ":", True),  # the key's colon and the value in one token
        ('": false', '": ', False),
        (" ", "", None),  # a space could go either way
        ("\n", "", None),
        ('"', "", None),
        ("yes", "", None),
        ("true", ":", None),  # does not begin with the colon that precedes the value in this token
    ],
)
def test_boolean_of(token: str, before: str, expected: bool | None) -> None:
    assert boolean_of(token, before) is expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # renormalised over the answers: the newline the grammar forbids does not count
        (TokenLogprob(" true", lp(0.5), ((" true", lp(0.5)), (" false", lp(0.3)), ("\n", lp(0.2)))), 0.5 / 0.8),
        # spellings add up: ' true' + 'True' + the split 'tr' against ' false'
        (
            TokenLogprob(
                " true", lp(0.4), ((" true", lp(0.4)), ("True", lp(0.1)), ("tr", lp(0.1)), (" false", lp(0.4)))
            ),
            0.6,
        ),
        # the chosen token is not among the alternatives: it is added once
        (TokenLogprob(" false", lp(0.3), ((" true", lp(0.6)),)), 0.6 / 0.9),
        # the model said false with P 0.9
        (TokenLogprob(" false", lp(0.9), ((" false", lp(0.9)), (" true", lp(0.1)))), 0.1),
        # no alternatives: the chosen token's probability is a lower bound, the rest counts for the other answer
        (TokenLogprob(" true", lp(0.7)), 0.7),
        (TokenLogprob(" false", lp(0.7)), 0.3),
        (TokenLogprob(" maybe", lp(0.9), ((" true", lp(0.05)),)), None),  # the chosen token spells no answer
    ],
)
def test_probability_true(item: TokenLogprob, expected: float | None) -> None:
    got = probability_true(item)
    assert got == (None if expected is None else pytest.approx(expected))


def tokens(*pieces: tuple[str, float] | tuple[str, float, tuple[tuple[str, float], ...]]) -> list[TokenLogprob]:
    return [TokenLogprob(*piece) for piece in pieces]


def test_check_probabilities_finds_each_value_however_it_is_split() -> None:
    answer_tokens = tokens(
        ('{"observation": "the true eye", "checks": {"a', 0.0),
        ('":', 0.0),
        (" true", lp(0.9), ((" true", lp(0.9)), (" false", lp(0.1)))),
        (', "b', 0.0),
        ('":', 0.0),
        (" tr", lp(0.6), ((" tr", lp(0.6)), (" f", lp(0.4)))),  # 'tr' + 'ue': the first token decides
        ("ue", lp(0.99), (("ue", lp(0.99)),)),
        (', "c":', 0.0),
        ("false", lp(0.8), (("false", lp(0.8)), ("true", lp(0.2)))),
        ("}}", 0.0),
    )
    probs = check_probabilities(answer_tokens, ["a", "b", "c", "missing"])
    assert probs == {"a": pytest.approx(0.9), "b": pytest.approx(0.6), "c": pytest.approx(0.2)}


@pytest.mark.parametrize(
    "answer_tokens",
    [
        [],
        tokens(('{"a": true}', 0.0)),  # no "checks" object
        tokens(('{"checks": {"a":', 0.0)),  # cut off before the value
    ],
)
def test_check_probabilities_empty_when_nothing_is_found(answer_tokens: list[TokenLogprob]) -> None:
    assert check_probabilities(answer_tokens, ["a"]) == {}


@pytest.mark.parametrize(
    ("passed", "probs", "expected"),
    [
        (True, {"a": 0.9, "b": 0.9}, 0.81),  # product: doubts add up
        (True, {"a": 1.0, "b": 0.6}, 0.6),
        (False, {"a": 0.99, "b": 0.1}, 1 - 0.099),  # failed: P(at least one check fails)
        (False, {"a": 0.99, "b": 0.99}, 1 - 0.9801),  # the checks say pass: a 'fail' is not sure at all
    ],
)
def test_combined_confidence(passed: bool, probs: dict[str, float], expected: float) -> None:
    assert combined_confidence(passed, probs) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------- parse_verdict


def reply_tokens(reply: Reply) -> list[TokenLogprob]:
    return [TokenLogprob(t, p, tuple(top)) for (t, p), top in zip(reply.logprobs or [], reply.top or [], strict=True)]


def test_uncertain_check_makes_a_low_confidence_pass_though_the_decision_is_certain() -> None:
    reply = Reply.answer(answer(), {"mask_quality": 0.6})
    decision = next(item for item in reply_tokens(reply) if item.token.strip() == "pass")
    assert math.exp(decision.logprob) > 0.99  # the old confidence: nearly 1
    verdict = parse_verdict(reply.content, NAMES, reply_tokens(reply))
    assert verdict.passed and verdict.confidence_source == "logprobs"
    assert verdict.check_probs["mask_quality"] == pytest.approx(0.6)
    assert verdict.check_probs["no_human"] == pytest.approx(0.99)
    assert verdict.confidence == pytest.approx(0.6 * 0.99**4)
    assert verdict.confidence < REVIEW_THRESHOLD
    assert verdict_status(verdict, REVIEW_THRESHOLD) == LabelStatus.REVIEW


def test_sure_checks_make_a_confident_pass_and_a_failed_check_a_confident_fail() -> None:
    sure = Reply.answer(answer(), dict.fromkeys(NAMES, 0.99))
    verdict = parse_verdict(sure.content, NAMES, reply_tokens(sure))
    assert verdict.passed and verdict.confidence == pytest.approx(0.99**5) and verdict.confidence > REVIEW_THRESHOLD
    failed = Reply.answer(answer(mask_on_part=False), {"mask_on_part": 0.05})
    verdict = parse_verdict(failed.content, NAMES, reply_tokens(failed))
    assert not verdict.passed and verdict.check_probs["mask_on_part"] == pytest.approx(0.05)
    assert verdict.confidence == pytest.approx(1 - 0.05 * 0.99**4)


def test_logprobs_missing_a_check_fall_back_to_stated() -> None:
    reply = Reply.answer(answer(), {})
    partial = [t for t in reply_tokens(reply) if "mask_quality" not in t.token]  # the key is gone from the text
    verdict = parse_verdict(reply.content, NAMES, partial)
    assert verdict.confidence_source == "stated" and verdict.confidence == pytest.approx(0.95)
    assert "mask_quality" not in verdict.check_probs and len(verdict.check_probs) == len(NAMES) - 1


# --------------------------------------------------------------------------------------------- ollama


def candidate() -> Candidate:
    mask = np.zeros((1, 120, 160), bool)
    mask[0, 40:60, 50:80] = True
    det = sv.Detections(xyxy=np.array([[50, 40, 80, 60]], np.float32), mask=mask, class_id=np.array([0]))
    return Candidate(np.full((120, 160, 3), 100, np.uint8), det, np.array([0, 0, 160, 120], np.float32), "dog", "eye")


def ollama(url: str) -> OllamaValidator:
    cfg = ValidateModelConfig(kind="ollama", host=url, model="llava:7b", timeout_s=5, retries=0)
    return OllamaValidator(cfg, TARGET, Runtime(), retry_backoff_s=0)


def test_ollama_asks_for_top_logprobs_and_gives_per_check_confidence() -> None:
    with FakeOllama(default=Reply.answer(answer(), {"mask_quality": 0.6})) as server:
        [verdict] = ollama(server.url).validate([candidate()])
    [request] = server.requests
    assert request["logprobs"] is True and request["top_logprobs"] == TOP_LOGPROBS
    assert verdict.passed and verdict.confidence_source == "logprobs"
    assert verdict.check_probs["mask_quality"] == pytest.approx(0.6)
    assert verdict.confidence < REVIEW_THRESHOLD


def test_ollama_without_logprobs_says_stated_once_with_the_version(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOG)
    with FakeOllama(default=Reply(content=json.dumps(answer())), version="0.12.11") as server:
        validator = ollama(server.url)
        verdicts = validator.validate([candidate()]) + validator.validate([candidate(), candidate()])
    assert [(v.confidence_source, v.confidence) for v in verdicts] == [("stated", 0.95)] * 3
    assert all(v.check_probs == {} for v in verdicts)
    said = [r.getMessage() for r in caplog.records if "no token log-probabilities" in r.getMessage()]
    assert len(said) == 1 and "0.12.11" in said[0] and "stated" in said[0]


@pytest.mark.parametrize(
    ("version", "warned"),
    [("0.12.0", True), ("0.11.4", True), ("0.12.11", False), ("0.13.2", False), ("0.0.0", False), (None, False)],
)
def test_ollama_version_at_startup(caplog: pytest.LogCaptureFixture, version: str | None, warned: bool) -> None:
    caplog.set_level(logging.WARNING, LOG)
    with FakeOllama(version=version) as server:
        validator = ollama(server.url)
    assert validator.server_version == version
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warned:
        [line] = warnings
        assert f"version {version}" in line and "0.12.11 or later" in line and "upgrade Ollama" in line
    else:
        assert warnings == []
