"""Config loading: every rule, good and bad, with the key path and the line in the message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from streamlabel.config import Config, ConfigError, load, parse

ROOT = Path(__file__).resolve().parents[1]


def issues_of(text: str, environ: dict[str, str] | None = None, cred: Path | None = None) -> list[str]:
    try:
        parse(textwrap.dedent(text), "t.yml", environ=environ or {}, credentials_dir=cred)
    except ConfigError as err:
        return [f"{i.line}: {i.path}: {i.message}" for i in err.issues]
    return []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("streams: {}\n", []),
        ("streams:\n  cam:\n    url: a.mp4\n    fps: 0.5\n", []),
        (
            "streams:\n  cam:\n    url: a.mp4\n    fps: -1\n",
            ["4: streams.cam.fps: Input should be greater than 0 (got -1)"],
        ),
        ("streams:\n  cam:\n    url: a.mp4\n    fsp: 2\n", ["4: streams.cam.fsp: unknown key"]),
        ("streams:\n  cam:\n    fps: 2\n", ["2: streams.cam.url: required key is missing"]),
        ("streams:\n  'bad name':\n    url: a.mp4\n", ["1: streams: stream name 'bad name' must be 1-64 letters"]),
        ("tracks: {}\n", ["1: tracks: unknown key"]),
        (
            "streams:\n  cam:\n    url: a.mp4\n    transport: sctp\n",
            ["4: streams.cam.transport: Input should be 'tcp' or 'udp'"],
        ),
        ("target:\n  anchor:\n    classes: []\n", ["3: target.anchor.classes: List should have at least 1 item"]),
        (
            "target:\n  anchor:\n    min_confidence: 1.5\n",
            ["3: target.anchor.min_confidence: Input should be less than or equal to 1"],
        ),
        ("target:\n  part:\n    prompt: ' . '\n", ["3: target.part.prompt: must name the part"]),
        (
            "target:\n  part:\n    min_area_ratio: 0.3\n    max_area_ratio: 0.2\n",
            ["2: target.part: min_area_ratio (0.3) must be below max_area_ratio (0.2)"],
        ),
        (
            "target:\n  validation:\n    checks:\n      - {name: a, question: q}\n      - {name: a, question: r}\n",
            ["3: target.validation.checks: check names must be unique (repeated: a)"],
        ),
        (
            "target:\n  validation:\n    checks:\n      - name: Bad-Name\n        question: q\n",
            ["4: target.validation.checks[0].name: must be lower_snake_case"],
        ),
        (
            "models:\n  validate:\n    concurrency: 0\n",
            ["3: models.validate.concurrency: Input should be greater than or equal to 1"],
        ),
        ("models:\n  dtype: float8\n", ["2: models.dtype: Input should be"]),
        ("store:\n  jpeg_quality: 101\n", ["2: store.jpeg_quality: Input should be less than or equal to 100"]),
        ("daemon:\n  log_level: LOUD\n", ["2: daemon.log_level: Input should be"]),
        ("streams:\n  cam:\n    url: [\n", ["4: : broken YAML"]),
        ("- a\n- b\n", ["1: : the file must be a mapping"]),
        ("streams:\n  cam:\n    url: a\n  cam:\n    url: b\n", ["4: streams.cam: key appears twice"]),
    ],
)
def test_config_rules(text: str, expected: list[str]) -> None:
    got = issues_of(text)
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        assert g.startswith(e), (g, e)


def test_env_substitution_from_environment_credentials_and_default(tmp_path: Path) -> None:
    (tmp_path / "CAM_PASS").write_text("s3cret\n")
    text = textwrap.dedent("""\
        streams:
          cam:
            url: rtsp://me:${CAM_PASS}@cam.local/stream
            fps: ${FPS}
        store:
          path: ${STORE:-/var/lib/streamlabel}
        """)
    cfg = parse(text, environ={"FPS": "3"}, credentials_dir=tmp_path)
    assert cfg.streams["cam"].url == "rtsp://me:s3cret@cam.local/stream"
    assert cfg.streams["cam"].fps == 3.0
    assert cfg.store.path == "/var/lib/streamlabel"


def test_missing_env_var_names_key_line_and_variable() -> None:
    got = issues_of("mqtt_ish: 1\nmodels:\n  validate:\n    host: http://${OLLAMA}:11434\n")
    assert "4: models.validate.host: ${OLLAMA} is not set" in " | ".join(got)
    assert any(g.startswith("1: mqtt_ish: unknown key") for g in got)


def test_default_config_file_is_the_documented_default() -> None:
    cfg = load(ROOT / "config" / "streamlabel.yml", environ={})
    assert cfg.target.anchor.classes == ["dog"]
    assert cfg.target.part.prompt == "eye"
    assert cfg.models.validate_.kind == "auto"
    assert cfg.models.validate_.model == "gemma4:e4b"
    assert [c.name for c in cfg.target.validation.checks] == [
        "anchor_visible",
        "part_visible",
        "no_human",
        "mask_on_part",
        "mask_quality",
    ]
    assert cfg == Config.model_validate(cfg.model_dump(by_alias=True))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load(tmp_path / "absent.yml")


def test_digest_changes_with_any_setting() -> None:
    a, b = Config(), Config()
    assert a.digest() == b.digest()
    b.target.part.box_threshold = 0.31
    assert a.digest() != b.digest()


def test_docs_config_md_matches_the_code() -> None:
    from streamlabel.configdoc import render_markdown

    doc = (ROOT / "docs" / "config.md").read_text()
    assert doc == render_markdown(), "docs/config.md is stale: python -m streamlabel.configdoc > docs/config.md"


def test_every_key_of_the_default_file_is_documented() -> None:
    doc = (ROOT / "docs" / "config.md").read_text()
    raw = yaml.safe_load((ROOT / "config" / "streamlabel.yml").read_text())

    def keys(node: object) -> list[str]:
        if isinstance(node, dict):
            return [k for key, value in node.items() for k in [key, *keys(value)]]
        if isinstance(node, list):
            return [k for item in node for k in keys(item)]
        return []

    documented = {k for k in keys(raw) if f"`{k}`" in doc or f".{k}`" in doc}
    assert sorted(set(keys(raw)) - documented) == []
