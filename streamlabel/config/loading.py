"""``parse()`` and ``load()``: YAML composed node by node so every error names its key path and line."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from streamlabel.config.root import Config

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, located by key path and line."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<top>'}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__("\n".join(f"{source}: {issue}" for issue in issues))


class _Locator:
    """Turns a YAML node tree into plain data, remembering the line of every key path."""

    def __init__(self, environ: dict[str, str], credentials: Path | None) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        self.issues: list[ConfigIssue] = []
        self._environ = environ
        self._credentials = credentials
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: tuple[str | int, ...] = ()) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._constructor.construct_object(key_node))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                if key in out:
                    self.issues.append(
                        ConfigIssue(_dotted((*path, key)), key_node.start_mark.line + 1, "key appears twice")
                    )
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = node.value if yaml11_word(node) else self._constructor.construct_object(node)
        if isinstance(value, str) and "${" in value:
            value = self._substitute(value, path, node.start_mark.line + 1)
        return value

    def _substitute(self, text: str, path: tuple[str | int, ...], line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self._environ:
                return self._environ[name]
            if self._credentials is not None and (self._credentials / name).is_file():
                return (self._credentials / name).read_text().rstrip("\r\n")
            if default is not None:
                return default
            where = "the environment" + (
                f" nor in {self._credentials}/{name}" if self._credentials else " ($CREDENTIALS_DIRECTORY unset)"
            )
            self.issues.append(ConfigIssue(_dotted(path), line, f"${{{name}}} is not set in {where}"))
            return ""

        return ENV_REF.sub(replace, text)


def yaml11_word(node: yaml.Node) -> bool:
    """A plain scalar that YAML 1.1 reads as a boolean but is not true/false: on, off, yes, no, y, n.

    Such a word stays a string (``compile: off`` is the mode 'off', not False); pydantic still reads it as a boolean
    where a field wants one.
    """
    return (
        isinstance(node, yaml.ScalarNode)
        and node.style is None
        and node.tag == "tag:yaml.org,2002:bool"
        and node.value.lower() not in ("true", "false")
    )


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _pydantic_issues(err: ValidationError, lines: dict[tuple[str | int, ...], int]) -> Iterator[ConfigIssue]:
    for e in err.errors():
        loc = tuple("validate" if p == "validate_" else p for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg} (got {e['input']!r})"
        yield ConfigIssue(_dotted(loc), _line_of(lines, loc), msg)


def parse(
    text: str,
    source: str = "<config>",
    environ: dict[str, str] | None = None,
    credentials_dir: str | Path | None = None,
) -> Config:
    """Parse config text; raise ConfigError naming every bad key with its line.

    Args:
        text: YAML text.
        source: name used in error messages (usually the file path).
        environ: variables for ``${NAME}``; ``os.environ`` when None.
        credentials_dir: folder of systemd credentials; ``$CREDENTIALS_DIRECTORY`` when None.
    """
    env = dict(os.environ if environ is None else environ)
    cred = credentials_dir if credentials_dir is not None else env.get("CREDENTIALS_DIRECTORY")
    locator = _Locator(env, Path(cred) if cred else None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            source, [ConfigIssue("", mark.line + 1 if mark else None, f"broken YAML: {problem}")]
        ) from None
    data = locator.build(node) if node is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", 1, "the file must be a mapping of sections")])
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, locator.issues + list(_pydantic_issues(err, locator.lines))) from None
    if locator.issues:
        raise ConfigError(source, locator.issues)
    return cfg


def load(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Load and validate a config file; raise ConfigError (with key path and line) when it is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [ConfigIssue("", None, f"cannot read the file: {exc.strerror}")]) from None
    return parse(text, str(p), environ)
