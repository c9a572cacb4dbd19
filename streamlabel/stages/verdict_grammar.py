"""Constrained decoding for the in-process validator: the model can only write the verdict object.

Ollama applies the answer's JSON schema while generating (``format=``); this does the same for the transformers
backend with a ``LogitsProcessor``, so a real model never answers malformed JSON. Hand-written rather than a grammar
library (outlines, lm-format-enforcer) because the schema is fixed and small: the keys and their order are known, so
the answer is a walk through a short list of segments, not a general grammar::

    {"observation": "<text>", "comparison": "<text>", "checks": {"<name>": true|false, ...},
     "decision": "pass"|"fail", "confidence": <0, 1, 0.d, 0.dd>}

Fixed text is forced with the longest token that spells its next characters. Inside a string the model may use any
token without a quote, backslash or control character, or close the string. At a boolean or the decision it may use
any token that begins one of the answers (``t``, ``tru``, ``true``, ``f`` ...); the rest of that answer is forced.
The two strings share the tokens that ``max_new_tokens`` leaves after the worst case of everything else, so the
object always closes before the limit, and the answer ends with the end-of-sequence token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SMALL_SET = 64
"""Allowed sets up to this size are recorded per step: the validator reads the answers' probabilities from them."""

_UNSAFE_IN_STRING = re.compile(r'["\\\x00-\x1f\ufffd]')  # a quote, a backslash, control chars, broken UTF-8
_NUMBER_PREFIX = re.compile(r"(0(\.\d{0,2})?|1(\.0{0,2})?)?")
_NUMBER = re.compile(r"0(\.\d{1,2})?|1(\.0{1,2})?")
_LONGEST_NUMBER = 4  # '0.95'
_BOOLEANS = (" true", " false")  # the space belongs to the value: real tokenizers spell " true" as one token
_DECISIONS = ("pass", "fail")


class TokenVocabulary:
    """The text of every token of a tokenizer, decoded in context, and lookups the grammar needs."""

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int]) -> None:
        anchor = tokenizer.encode("a", add_special_tokens=False)[:1]
        head = tokenizer.decode(anchor, clean_up_tokenization_spaces=False)
        pairs = [[*anchor, i] for i in range(len(tokenizer))]
        decoded = tokenizer.batch_decode(pairs, clean_up_tokenization_spaces=False)
        excluded = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
        self.texts = [
            "" if i in excluded or not text.startswith(head) else text[len(head) :] for i, text in enumerate(decoded)
        ]
        self.eos_ids = sorted({i for i in eos_ids if i is not None})
        self.by_text: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            if text:
                self.by_text.setdefault(text, []).append(i)
        self.string_safe = [i for i, text in enumerate(self.texts) if text and not _UNSAFE_IN_STRING.search(text)]
        self.numeric = [
            (i, text)
            for i, text in enumerate(self.texts)
            if text and len(text) <= _LONGEST_NUMBER and set(text) <= set("0123456789.")
        ]
        self.longest = max((len(t) for t in self.by_text), default=1)

    def prefixes(self, text: str) -> list[int]:
        """Ids of tokens whose text is a nonempty prefix of ``text``."""
        return [i for k in range(1, min(len(text), self.longest) + 1) for i in self.by_text.get(text[:k], [])]

    def longest_prefix(self, text: str) -> tuple[list[int], int]:
        """Ids of the longest token(s) that spell the start of ``text``, and its length; ([], 0) if none."""
        for k in range(min(len(text), self.longest), 0, -1):
            if text[:k] in self.by_text:
                return self.by_text[text[:k]], k
        return [], 0

    def forced_count(self, text: str) -> int:
        """Tokens needed to force ``text`` by longest matches; ValueError naming the text if it can't be spelled."""
        count = 0
        while text:
            _, k = self.longest_prefix(text)
            if k == 0:
                raise ValueError(f"the validator's tokenizer has no token for {text[0]!r}; it cannot spell the answer")
            text, count = text[k:], count + 1
        return count

    def choice_ids(self, options: Sequence[str], written: str = "") -> list[int]:
        """Ids of tokens that continue ``written`` towards at least one of ``options``."""
        ids = {i for o in options if o.startswith(written) for i in self.prefixes(o[len(written) :])}
        return sorted(ids)

    def worst_choice(self, options: Sequence[str], follow: str = "", written: str = "") -> int:
        """Most tokens one of ``options`` and then ``follow`` take: free tokens while ambiguous, then forced."""
        texts = {self.texts[i] for i in self.choice_ids(options, written)}
        if not texts:
            raise ValueError(f"the validator's tokenizer cannot spell any of {options!r}; it cannot answer")
        worst = 0
        for text in texts:
            now = written + text
            alive = [o for o in options if o.startswith(now)]
            more = self.forced_count(alive[0][len(now) :] + follow) if len(alive) == 1 else None
            worst = max(worst, 1 + (self.worst_choice(options, follow, now) if more is None else more))
        return worst


@dataclass(frozen=True)
class Segment:
    """One piece of the answer: 'lit' (fixed text), 'str', 'choice' (one of ``options``), 'num' or 'eos'."""

    kind: str
    text: str = ""
    options: tuple[str, ...] = ()


def verdict_segments(check_names: Sequence[str]) -> list[Segment]:
    """The verdict object as segments, fixed texts merged."""
    raw = [Segment("lit", '{"observation": "'), Segment("str"), Segment("lit", '", "comparison": "'), Segment("str")]
    raw.append(Segment("lit", '", "checks": {'))
    for n, name in enumerate(check_names):
        raw += [Segment("lit", ("" if n == 0 else ", ") + f'"{name}":'), Segment("choice", options=_BOOLEANS)]
    raw += [Segment("lit", '}, "decision": "'), Segment("choice", options=_DECISIONS), Segment("lit", '", ')]
    raw += [Segment("lit", '"confidence": '), Segment("num"), Segment("lit", "}"), Segment("eos")]
    merged: list[Segment] = []
    for seg in raw:
        if seg.kind == "lit" and merged and merged[-1].kind == "lit":
            merged[-1] = Segment("lit", merged[-1].text + seg.text)
        else:
            merged.append(seg)
    return merged


class VerdictGrammar:
    """The verdict's segments for one checklist and tokenizer, with the token cap of each string."""

    def __init__(self, vocab: TokenVocabulary, check_names: Sequence[str], max_new_tokens: int) -> None:
        if not vocab.eos_ids:
            raise ValueError("the validator model has no end-of-sequence token; its answer could never end")
        self.vocab = vocab
        self.segments = verdict_segments(check_names)
        self._string_masks: dict[tuple[int, str], Any] = {}
        reserved = self._worst_fixed_tokens()
        self.string_cap = (max_new_tokens - reserved) // 2
        if self.string_cap < 1:
            raise ValueError(
                f"models.validate.max_new_tokens is {max_new_tokens}, but the verdict object for "
                f"{len(check_names)} checks takes up to {reserved} tokens before any text; raise it to at least "
                f"{reserved + 32}"
            )

    def string_mask(self, width: int, device: Any) -> Any:
        """Bool tensor over ``width`` logits: True for tokens allowed inside a string; built once per device."""
        import torch

        key = (width, str(device))
        if key not in self._string_masks:
            mask = torch.zeros(width, dtype=torch.bool)
            mask[[i for i in self.vocab.string_safe if i < width]] = True
            self._string_masks[key] = mask.to(device)
        return self._string_masks[key]

    def _worst_fixed_tokens(self) -> int:
        """Most tokens everything but the strings' text can take (a closing quote counts as fixed)."""
        total, segs = 0, self.segments
        for n, seg in enumerate(segs):
            follow = segs[n + 1].text if n + 1 < len(segs) and segs[n + 1].kind == "lit" else ""
            if seg.kind == "lit" and n == 0:
                total += self.vocab.forced_count(seg.text)
            elif seg.kind in ("str", "num"):
                total += self.vocab.worst_choice((follow,)) + (_LONGEST_NUMBER if seg.kind == "num" else 0)
            elif seg.kind == "choice":
                total += self.vocab.worst_choice(seg.options, follow)
            elif seg.kind == "eos":
                total += 1
        return total


class VerdictConstraint:
    """A transformers ``LogitsProcessor`` for one generation: masks every token the verdict object can't take next.

    ``small_sets[step]`` keeps the allowed ids where there were at most ``SMALL_SET`` of them (the answers at a
    boolean or the decision), for reading their probabilities afterwards.
    """

    def __init__(self, grammar: VerdictGrammar, prompt_len: int) -> None:
        self.grammar, self.vocab = grammar, grammar.vocab
        self.prompt_len = prompt_len
        self.small_sets: dict[int, list[int]] = {}
        self._seen = 0
        self._forced = ""
        self._index = 0
        self._used = 0  # tokens written in the current string
        self._written = ""  # text written so far in the current choice or number
        self._enter(0)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for token_id in input_ids[0, self.prompt_len + self._seen :].tolist():
            self._advance(int(token_id))
            self._seen += 1
        allowed = self._allowed()
        if self._free_text():  # the big set: a cached mask of every string-safe token, not a list per step
            keep = self.grammar.string_mask(scores.shape[-1], scores.device).clone()
        else:
            keep = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
            if len(allowed) <= SMALL_SET:
                self.small_sets[self._seen] = allowed
        keep[[i for i in allowed if i < scores.shape[-1]]] = True
        return scores.masked_fill(~keep, float("-inf"))

    def _free_text(self) -> bool:
        """Inside a string with tokens left: any string-safe token may come next (besides ``_allowed``)."""
        return not self._forced and self._segment.kind == "str" and self._used < self.grammar.string_cap

    @property
    def done(self) -> bool:
        """The object is complete (only the end-of-sequence token is left)."""
        return not self._forced and self._segment.kind == "eos"

    @property
    def _segment(self) -> Segment:
        return self.grammar.segments[self._index]

    def _follow(self) -> str:
        segs = self.grammar.segments
        return segs[self._index + 1].text if self._index + 1 < len(segs) and segs[self._index + 1].kind == "lit" else ""

    def _enter(self, index: int) -> None:
        segs = self.grammar.segments
        while segs[index].kind == "lit":
            self._forced += segs[index].text
            index += 1
        self._index, self._used, self._written = index, 0, ""

    def _allowed(self) -> list[int]:
        vocab, seg = self.vocab, self._segment
        if self._forced:
            return vocab.longest_prefix(self._forced)[0]
        if seg.kind == "str":  # closing it; the string-safe tokens come from ``string_mask`` (see ``__call__``)
            return vocab.prefixes(self._follow())
        if seg.kind == "choice":
            return vocab.choice_ids(seg.options, self._written)
        if seg.kind == "num":
            digits = [i for i, text in vocab.numeric if _NUMBER_PREFIX.fullmatch(self._written + text)]
            return digits + (vocab.prefixes(self._follow()) if _NUMBER.fullmatch(self._written) else [])
        return list(vocab.eos_ids)

    def _advance(self, token_id: int) -> None:
        text, seg = self.vocab.texts[token_id], self._segment
        if self._forced:
            self._forced = self._forced[len(text) :]
        elif seg.kind == "str" and not text.startswith('"'):
            self._used += 1
        elif seg.kind == "num" and not text.startswith("}"):
            self._written += text
        elif seg.kind == "choice":
            self._choose(seg, text)
        elif seg.kind in ("str", "num"):
            follow = self._follow()
            self._enter(self._index + 2)
            self._forced = follow[len(text) :] + self._forced

    def _choose(self, seg: Segment, text: str) -> None:
        """Extend the choice; once one option is left, force the rest of it and what follows."""
        self._written += text
        alive = [o for o in seg.options if o.startswith(self._written)]
        if len(alive) == 1:
            rest = alive[0][len(self._written) :]
            self._enter(self._index + 1)
            self._forced = rest + self._forced
