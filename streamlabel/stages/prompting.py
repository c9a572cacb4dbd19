"""The validator's conversation: the checklist prompt, the JSON schema of the answer, and parsing it to a Verdict.

Backend-neutral: the Ollama and transformers validators both send ``build_prompt`` with the two views of
``overlay.render_views`` and hand the answer text (and per-token log-probabilities when they have them) to
``parse_verdict``. Parsing never raises: an answer that cannot be used is a failed verdict with the raw text kept.
Confidence comes from the per-check probabilities of ``confidence`` (see there why product, and why not the
decision token); the model's stated number is the fallback when a backend gives no log-probabilities.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from streamlabel.config import CheckConfig
from streamlabel.stages.base import Verdict
from streamlabel.stages.confidence import TokenLogprob, check_probabilities, combined_confidence

PASS, FAIL = "pass", "fail"
DECISIONS = (PASS, FAIL)

_PROMPT = """You are checking an automatic label before it goes into a training dataset.
Image 1 is the full camera frame. The region declared to be the {part} of a {anchor} is filled in \
semi-transparent red, with a red outline.
Image 2 is a zoomed crop around that region, with the same red mask.
Declared detection: the red mask covers the {part} of a {anchor}.

Answer with one JSON object whose fields you fill in this order:
1. "observation": one or two sentences on what you actually see in and around the red mask. Describe it \
before judging.
2. "comparison": how what you see compares with the declared detection (the {part} of a {anchor} in the red mask).
3. "checks": for each statement below, true if it holds and false otherwise.
{checks}
4. "decision": "pass" if every check is true, otherwise "fail".
5. "confidence": a number from 0 to 1: how sure you are of your decision.
Write only the JSON object."""


class MalformedAnswerError(ValueError):
    """The model's answer is not a usable verdict object; the message says what is wrong."""


def fill_names(text: str, anchor_name: str, part_name: str) -> str:
    """Replace '{anchor}' and '{part}' in a check question (other braces are left alone)."""
    return text.replace("{anchor}", anchor_name).replace("{part}", part_name)


def build_prompt(checks: Sequence[CheckConfig], anchor_name: str, part_name: str) -> str:
    """The checklist prompt for one candidate: observe, compare with the declared detection, then judge."""
    lines = "\n".join(f'   - "{c.name}": {fill_names(c.question, anchor_name, part_name)}' for c in checks)
    return fill_names(_PROMPT, anchor_name, part_name).format(checks=lines)


def verdict_schema(check_names: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the answer (for Ollama's ``format=``); every field required, nothing else allowed."""
    checks = {
        "type": "object",
        "properties": {name: {"type": "boolean"} for name in check_names},
        "required": list(check_names),
        "additionalProperties": False,
    }
    properties = {
        "observation": {"type": "string"},
        "comparison": {"type": "string"},
        "checks": checks,
        "decision": {"type": "string", "enum": list(DECISIONS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; tolerates code fences and text around it. MalformedAnswerError if none."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise MalformedAnswerError("no JSON object in the answer")


def _text_field(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise MalformedAnswerError(f"{name!r} must be a string (got {value!r})")
    return value.strip()


def _checks_field(obj: Mapping[str, Any], check_names: Sequence[str]) -> dict[str, bool]:
    checks = obj.get("checks")
    if not isinstance(checks, dict):
        raise MalformedAnswerError(f"'checks' must be an object (got {checks!r})")
    missing = [name for name in check_names if name not in checks]
    if missing:
        raise MalformedAnswerError(f"checks missing: {', '.join(missing)}")
    bad = [name for name in check_names if not isinstance(checks[name], bool)]
    if bad:
        raise MalformedAnswerError(f"checks not true/false: {', '.join(bad)}")
    return {name: checks[name] for name in check_names}


def _decision_field(obj: Mapping[str, Any]) -> str:
    value = obj.get("decision")
    decision = value.strip().lower() if isinstance(value, str) else None
    if decision not in DECISIONS:
        raise MalformedAnswerError(f"'decision' must be 'pass' or 'fail' (got {value!r})")
    return decision


def _confidence_field(obj: Mapping[str, Any]) -> float:
    value = obj.get("confidence")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedAnswerError(f"'confidence' must be a number (got {value!r})")
    return min(1.0, max(0.0, float(value)))


def _reason(decision: str, checks: Mapping[str, bool], comparison: str) -> str:
    failed = [name for name, ok in checks.items() if not ok]
    if not failed:
        return comparison if decision == PASS else f"the model decided 'fail'. {comparison}".strip()
    note = " (the model decided 'pass' nonetheless)" if decision == PASS else ""
    return f"failed checks: {', '.join(failed)}{note}. {comparison}".strip()


def malformed_verdict(text: str, why: str, model: str = "", latency_s: float = 0.0) -> Verdict:
    """A failed verdict for an answer that could not be used; the raw text is kept."""
    return Verdict(
        passed=False,
        confidence=0.0,
        reason=f"malformed output: {why}",
        model=model,
        latency_s=latency_s,
        confidence_source="none",
        raw=text,
    )


def parse_verdict(
    text: str,
    check_names: Sequence[str],
    token_logprobs: Sequence[TokenLogprob] | None = None,
    model: str = "",
    latency_s: float = 0.0,
) -> Verdict:
    """Turn the model's answer into a Verdict; never raises.

    ``passed`` needs decision 'pass' and every check true. With ``token_logprobs`` that hold every check's value,
    ``check_probs`` gets P(true) per check and the confidence is their combination ('logprobs'); otherwise the
    confidence is the stated number, clipped to [0, 1] ('stated'). Anything missing or of the wrong type gives a
    failed verdict with ``raw`` kept.
    """
    try:
        obj = first_json_object(text)
        observation = _text_field(obj, "observation")
        comparison = _text_field(obj, "comparison")
        checks = _checks_field(obj, check_names)
        decision = _decision_field(obj)
        stated = _confidence_field(obj)
    except MalformedAnswerError as exc:
        return malformed_verdict(text, str(exc), model, latency_s)
    passed = decision == PASS and all(checks.values())
    check_probs = check_probabilities(token_logprobs, check_names) if token_logprobs else {}
    per_check = len(check_probs) == len(check_names)
    return Verdict(
        passed=passed,
        confidence=combined_confidence(passed, check_probs) if per_check else stated,
        checks=checks,
        reason=_reason(decision, checks, comparison),
        model=model,
        latency_s=latency_s,
        confidence_source="logprobs" if per_check else "stated",
        observation=observation,
        check_probs=check_probs,
    )
