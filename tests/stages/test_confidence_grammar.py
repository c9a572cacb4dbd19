"""The verdict grammar of the transformers backend: whatever the model's logits, the answer is the verdict object,
closed within ``max_new_tokens``. Walks the constraint with the tiny VLM's tokenizer and scripted logits (no model)."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import torch

from streamlabel.config import TargetConfig
from streamlabel.stages.prompting import parse_verdict
from streamlabel.stages.verdict_grammar import SMALL_SET, TokenVocabulary, VerdictConstraint, VerdictGrammar

NAMES = [c.name for c in TargetConfig().validation.checks]
MAX_NEW_TOKENS = 96
EXTRA_LOGITS = 7  # a model's output layer may be wider than its tokenizer (ids past it decode to nothing)
KEYS = ["observation", "comparison", "checks", "decision", "confidence"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from streamlabel.tiny.vlm import build_tiny_vlm

    return AutoTokenizer.from_pretrained(build_tiny_vlm(tmp_path_factory.mktemp("vlm")))


@pytest.fixture(scope="module")
def grammar(tokenizer: Any) -> VerdictGrammar:
    return VerdictGrammar(TokenVocabulary(tokenizer, [tokenizer.eos_token_id]), NAMES, MAX_NEW_TOKENS)


def walk(grammar: VerdictGrammar, pick: Any, rng: np.random.Generator) -> tuple[list[int], VerdictConstraint]:
    """Generate like ``generate`` does: the constraint masks random logits, ``pick`` chooses among what is left."""
    prompt = [5, 6]
    constraint = VerdictConstraint(grammar, prompt_len=len(prompt))
    ids = list(prompt)
    width = len(grammar.vocab.texts) + EXTRA_LOGITS
    for _ in range(MAX_NEW_TOKENS):
        scores = constraint(torch.tensor([ids]), torch.from_numpy(rng.normal(size=(1, width))))
        allowed = torch.isfinite(scores[0]).nonzero().flatten().tolist()
        assert allowed and max(allowed) < len(grammar.vocab.texts)
        ids.append(pick(allowed, scores[0]))
        if ids[-1] in grammar.vocab.eos_ids:
            break
    return ids[len(prompt) :], constraint


def greedy(allowed: list[int], scores: torch.Tensor) -> int:
    return int(scores.argmax())


def shortest(texts: list[str]) -> Any:
    """The adversary: always the shortest token (single characters, a string never closed until it must be)."""
    return lambda allowed, scores: min(allowed, key=lambda i: (len(texts[i]) if texts[i] else 99, i))


def test_random_logits_always_give_a_verdict_object(grammar: VerdictGrammar, tokenizer: Any) -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(12):
        ids, constraint = walk(grammar, greedy, rng)
        assert ids[-1] == tokenizer.eos_token_id and len(ids) <= MAX_NEW_TOKENS and constraint.done
        text = tokenizer.decode(ids, skip_special_tokens=True)
        assert list(json.loads(text)) == KEYS and list(json.loads(text)["checks"]) == NAMES
        verdict = parse_verdict(text, NAMES)
        assert verdict.raw is None, text
        seen.add(tuple(verdict.checks.values()))
    assert len(seen) > 1  # the model's logits choose the answers, not the grammar


def test_the_worst_tokenization_still_closes_in_time(grammar: VerdictGrammar, tokenizer: Any) -> None:
    ids, _ = walk(grammar, shortest(grammar.vocab.texts), np.random.default_rng(1))
    assert ids[-1] == tokenizer.eos_token_id and len(ids) <= MAX_NEW_TOKENS
    obj = json.loads(tokenizer.decode(ids, skip_special_tokens=True))
    assert len(obj["observation"]) == grammar.string_cap  # the string ran to its cap, one character a token


def test_answer_steps_record_their_few_choices(grammar: VerdictGrammar) -> None:
    ids, constraint = walk(grammar, greedy, np.random.default_rng(2))
    texts = grammar.vocab.texts
    answers = [step for step, allowed in constraint.small_sets.items() if len(allowed) > 1]
    assert len(answers) >= len(NAMES) + 1  # a boolean per check, the decision (and the number's digits)
    for step in answers:
        assert len(constraint.small_sets[step]) <= SMALL_SET
        assert ids[step] in constraint.small_sets[step]
    spelled = {texts[i] for step in answers for i in constraint.small_sets[step]}
    assert {" true", "t", "f"} & spelled and "pass" in spelled


def test_too_few_new_tokens_name_the_setting(grammar: VerdictGrammar) -> None:
    with pytest.raises(ValueError, match=r"max_new_tokens is 40.*5 checks.*raise it to at least"):
        VerdictGrammar(grammar.vocab, NAMES, 40)


def test_a_tokenizer_that_cannot_spell_the_answer_is_refused(grammar: VerdictGrammar) -> None:
    vocab = grammar.vocab
    crippled = object.__new__(TokenVocabulary)
    crippled.__dict__.update(vocab.__dict__)
    crippled.by_text = {t: ids for t, ids in vocab.by_text.items() if "{" not in t}
    crippled.longest = vocab.longest
    with pytest.raises(ValueError, match=re.escape("no token for '{'")):
        VerdictGrammar(crippled, NAMES, MAX_NEW_TOKENS)
