"""Config variants that a benchmark times side by side: ``NAME:KEY=VALUE[,KEY=VALUE...]`` on the command line.

A key is a dotted config path (``models.ground.input_short_side_px``); a value is read as YAML (``512``, ``off``,
``true``). The first variant is the baseline that the others' ratios are taken against; ``parse_variants`` puts the
plain benchmark config first, named ``defaults``, unless a variant of that name is given.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from streamlabel.config.loading import yaml11_word

BASELINE = "defaults"


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``'ground512:models.ground.input_short_side_px=512'`` -> ('ground512', {key: 512}); ValueError naming the
    part that is wrong."""
    name, sep, body = text.partition(":")
    name = name.strip()
    if not sep or not name or not body.strip():
        raise ValueError(f"variant {text!r}: write NAME:KEY=VALUE[,KEY=VALUE...]")
    overrides: dict[str, Any] = {}
    for item in body.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"variant {name!r}: {item!r} is not KEY=VALUE")
        overrides[key.strip()] = _value(value)
    return name, overrides


def _value(text: str) -> Any:
    """A YAML scalar as the config file would read it (``off`` stays the word; ``512`` is a number; empty is None)."""
    if not text.strip():
        return None
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node.value if yaml11_word(node) else yaml.safe_load(text)


def parse_variants(texts: list[str]) -> dict[str, dict[str, Any]]:
    """Variants by name in the order given, the baseline (``defaults``, no overrides) first; names must differ."""
    variants: dict[str, dict[str, Any]] = {}
    for text in texts:
        name, overrides = parse_variant(text)
        if name in variants:
            raise ValueError(f"variant {name!r} is given twice")
        variants[name] = overrides
    if BASELINE in variants:
        return {BASELINE: variants.pop(BASELINE), **variants}
    return {BASELINE: {}, **variants}


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the raw config ``base`` with each dotted key set (missing sections are created)."""
    out = copy.deepcopy(base)
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"variant key {dotted!r}: {part!r} is a value, not a section")
            node = child
        node[leaf] = value
    return out
