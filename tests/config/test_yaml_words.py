"""YAML 1.1 reads on/off/yes/no as booleans; the config keeps them as words, so `compile: off` means the mode."""

from __future__ import annotations

import pytest

from streamlabel.config import ConfigError, parse


def test_off_is_the_word_for_a_mode_field() -> None:
    cfg = parse("models:\n  compile: off\n  detect:\n    tensorrt: off\n")
    assert cfg.models.compile == "off" and cfg.models.detect.tensorrt == "off"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("off", False), ("no", False), ("n", False), ("false", False), ("on", True), ("yes", True), ("true", True)],
)
def test_boolean_fields_still_read_every_yaml_boolean(text: str, expected: bool) -> None:
    assert parse(f"models:\n  overlap: {text}\n").models.overlap is expected


def test_a_quoted_word_and_a_wrong_word_are_still_checked() -> None:
    assert parse('models:\n  compile: "default"\n').models.compile == "default"
    with pytest.raises(ConfigError, match=r"line 2: models.compile: .*got 'fast'"):
        parse("models:\n  compile: fast\n")
