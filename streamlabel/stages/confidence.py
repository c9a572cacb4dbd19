"""How sure the validator is: per-check probabilities from token log-probabilities, and one confidence from them.

Each check's answer is a JSON boolean in the verdict object. At the first token of that value the model had a
distribution over tokens; the ones that begin ``true`` (``true``, `` true``, ``True``, ``tr`` of a split
``tr``+``ue``) and those that begin ``false`` are the two answers. ``P(check true)`` is the mass of the first set
over the mass of both, read from the token's top alternatives. Renormalising matters: Ollama computes logprobs
before its ``format`` grammar applies, so mass on tokens the grammar forbids (a quote, a newline) is dropped rather
than counted against the answer. Only the first token of the value counts: once ``tr`` is out, ``ue`` is certain.

The verdict's confidence combines the checks by their **product**: a label is right only when every check holds,
and the product is the probability of that when the answers are independent. The minimum would be an upper bound
that hides accumulated doubt (five checks at 0.9 each are 0.59 together, not 0.9). A passing verdict's confidence is
``prod P(true)``; a failing one's is the probability that at least one check fails, ``1 - prod P(true)``. The
``decision`` token is not used: it comes after the checks and is defined by them, so the model is nearly always
certain of it, which is why the old decision-token confidence almost never sent anything to review.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

TOP_LOGPROBS = 10
"""Alternatives asked for at every answer token (Ollama allows 0-20); enough to hold both spellings of true/false."""

_CHECKS_OBJECT = re.compile(r'"checks"\s*:\s*\{')
_ANSWERS = (("true", True), ("false", False))


class TokenLogprob(NamedTuple):
    """One generated token, the log-probability the model gave it, and the most likely alternatives there.

    ``top`` holds ``(token, logprob)`` pairs of the likeliest tokens at this position (the chosen one usually among
    them; Ollama's ``top_logprobs``, OpenAI's ``top_logprobs``, the transformers backend's top-k). Empty when the
    backend gave only the chosen token's log-probability.
    """

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


def boolean_of(token: str, before: str = "") -> bool | None:
    """The answer a token starts to spell after ``before`` (the JSON that precedes the value in the same token).

    ``' true'``, ``'True'``, ``'tr'`` and ``'true,'`` are True; ``'f'``, ``' false'`` are False; a token that does
    not begin with ``before`` (spaces aside) or that spells neither is None.
    """
    rest = token.lstrip()
    core = before.strip()
    if core:
        if not rest.startswith(core):
            return None
        rest = rest[len(core) :].lstrip()
    rest = rest.lower()
    if not rest:
        return None
    for word, value in _ANSWERS:
        if word.startswith(rest) or rest.startswith(word):
            return value
    return None


def probability_true(item: TokenLogprob, before: str = "") -> float | None:
    """P(the value is true) at the value's first token, renormalised over the alternatives that spell an answer.

    Without alternatives only the chosen token's probability is known; it is a lower bound on its answer's
    probability, and the rest is counted for the other answer. None when the chosen token spells no answer.
    """
    chosen = boolean_of(item.token, before)
    if chosen is None:
        return None
    if not item.top:
        p_chosen = min(1.0, math.exp(item.logprob))
        return p_chosen if chosen else 1.0 - p_chosen
    alternatives = list(item.top)
    if all(text != item.token for text, _ in alternatives):
        alternatives.append((item.token, item.logprob))
    mass = {True: 0.0, False: 0.0}
    for text, logprob in alternatives:
        value = boolean_of(text, before)
        if value is not None:
            mass[value] += math.exp(logprob)
    total = mass[True] + mass[False]
    return mass[True] / total if total > 0 else None


def check_probabilities(token_logprobs: Sequence[TokenLogprob], check_names: Sequence[str]) -> dict[str, float]:
    """Check name -> P(true), for every check whose value is found in the ``checks`` object of the tokens' text.

    The tokens are joined; each check's key is searched after ``"checks": {`` and the token covering the first
    character of its value is read with ``probability_true``. Checks not found are left out.
    """
    starts, text = [], ""
    for item in token_logprobs:
        starts.append(len(text))
        text += item.token
    block = _CHECKS_OBJECT.search(text)
    if block is None:
        return {}
    probs: dict[str, float] = {}
    for name in check_names:
        key = re.compile(rf'"{re.escape(name)}"\s*:\s*').search(text, block.end())
        if key is None or key.end() >= len(text):
            continue
        index = bisect.bisect_right(starts, key.end()) - 1
        start = starts[index]
        p_true = probability_true(token_logprobs[index], text[start : key.end()])
        if p_true is not None:
            probs[name] = p_true
    return probs


def combined_confidence(passed: bool, check_probs: Mapping[str, float]) -> float:
    """How sure the verdict is: ``prod P(true)`` when it passed, ``1 - prod P(true)`` when it failed."""
    p_all_true = math.prod(check_probs.values())
    return p_all_true if passed else 1.0 - p_all_true


def logits_logprobs(
    token_ids: Sequence[int], logits: Sequence[Any], texts: Sequence[str], small_sets: Mapping[int, Sequence[int]]
) -> list[TokenLogprob]:
    """Each generated token with its log-probability under the raw (unconstrained) logits and its alternatives.

    ``texts`` is every token id's text; ``small_sets`` maps a step to the ids a constraint allowed there. The
    alternatives are the top ``TOP_LOGPROBS`` tokens plus, where the constraint allowed only a few (a
    boolean's or the decision's spellings), all of those: the checks' P(true) is then exact, not a top-k guess.
    """
    import torch

    picks = []
    for step, (token_id, step_logits) in enumerate(zip(token_ids, logits, strict=False)):
        logprobs = torch.log_softmax(step_logits[0].float(), dim=-1)
        ids = torch.topk(logprobs, min(TOP_LOGPROBS, logprobs.numel())).indices
        extra = torch.tensor(small_sets.get(step, []), dtype=torch.long, device=ids.device)
        ids = torch.cat([torch.tensor([token_id], device=ids.device), ids, extra]).unique()
        picks.append((token_id, ids, logprobs[ids], logprobs[token_id]))
    out = []
    for token_id, ids, values, chosen in picks:
        top = tuple((texts[i] if i < len(texts) else "", v) for i, v in zip(ids.tolist(), values.tolist(), strict=True))
        out.append(TokenLogprob(texts[token_id] if token_id < len(texts) else "", chosen.item(), top))
    return out
