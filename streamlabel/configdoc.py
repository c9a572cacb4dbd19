"""Renders docs/config.md from the config models, so the reference always matches the code.

``python -m streamlabel.configdoc > docs/config.md``; a test fails when the file is out of date.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from streamlabel.config import Config, StreamConfig

HEADER = """# Configuration reference

streamlabel reads one YAML file: `config/streamlabel.yml` in the repository (the documented default),
`/etc/streamlabel/streamlabel.yml` under systemd. Check a file with `streamlabel check -c FILE`: it exits 0 when
the file is good and 2 with `FILE:LINE: key.path: problem` lines when it is not.

- Unknown keys are errors (a typo never silently falls back to a default).
- `${NAME}` in any value is replaced from the environment, or from `$CREDENTIALS_DIRECTORY/NAME` (systemd
  `LoadCredential=`); `${NAME:-default}` gives a fallback. A missing variable without a fallback is an error that
  names the key and the line.
- Times are seconds (`*_s`), never frames.

This file is generated from the code: `python -m streamlabel.configdoc > docs/config.md`.
"""


def _type_name(info: FieldInfo) -> str:
    text = re.sub(r"streamlabel\.config\.\w+\.", "", str(info.annotation).replace("typing.", ""))
    return text.replace("<class '", "").replace("'>", "").replace("|", "\\|")


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} items (see the default file)"
    return f"`{json.dumps(value)}`"


def _model_of(ann: Any) -> type[BaseModel] | None:
    """The model of a section field, also when the section is optional (``MqttConfig | None``)."""
    if isinstance(ann, types.UnionType):
        models = [a for a in ann.__args__ if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    rows, subs = [], []
    for name, info in model.model_fields.items():
        key = info.alias or name
        ann: Any = info.annotation
        sub = _model_of(ann)
        if sub is not None:
            subs.append((sub, f"{prefix}.{key}" if prefix else key))
            continue
        args = getattr(ann, "__args__", ()) or (None,)
        item = args[-1]  # list[Model] and dict[str, Model] document their Model
        if isinstance(item, type) and issubclass(item, BaseModel):
            suffix = ".<name>" if typing.get_origin(ann) is dict else "[]"
            subs.append((item, f"{prefix}.{key}{suffix}"))
        rows.append(f"| `{key}` | {_type_name(info)} | {_default(info)} | {info.description or ''} |")
    if rows:
        out += [
            f"## `{prefix}`" if prefix else "## top level",
            "",
            (model.__doc__ or "").strip(),
            "",
            "| key | type | default | what it does |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    for sub, path in subs:
        _section(sub, path, out)


def render_markdown() -> str:
    """The whole reference as Markdown."""
    out = [HEADER, "# Sections", "", "| key | what it holds |", "|---|---|"]
    out += [f"| `{name}` | {info.description or ''} |" for name, info in Config.model_fields.items()]
    out += ["", "# `streams`", "", Config.model_fields["streams"].description or "", ""]
    _section(StreamConfig, "streams.<name>", out)
    for name, info in Config.model_fields.items():
        section = _model_of(info.annotation)
        if section is not None:
            out += [f"# `{name}`", "", info.description or "", ""]
            _section(section, name, out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
