"""The YAML configuration as pydantic v2 models, and ``load()`` with ``${ENV}`` substitution.

Every field has a description: ``docs/config.md`` and ``streamlabel check`` read them. Errors name the key path
and the line of the file, and loading stops at the first file that is wrong in any way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------------------------- streams


class StreamConfig(_Model):
    """One camera or file."""

    url: str = Field(
        description="Source: a video file path, an rtsp:// or rtsps:// URL, an http(s):// URL (HLS, MJPEG) or "
        "a V4L2 device such as /dev/video0. Use ${NAME} for passwords."
    )
    fps: float = Field(
        2.0,
        gt=0,
        description="Frames sampled per second of video. Higher labels more frames and costs more GPU time.",
    )
    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport. UDP has less latency but loses packets on busy Wi-Fi."
    )
    open_timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for a source to open.")
    read_timeout_s: float = Field(
        10.0, gt=0, description="Seconds without a packet before a live source counts as stalled."
    )
    loop: bool = Field(False, description="Files only: start again at the end instead of finishing.")
    decode: Literal["auto", "all", "keyframes"] = Field(
        "auto",
        description="'auto' decodes only keyframes when the sampling interval is at least the keyframe interval "
        "(much less CPU); 'all' decodes every frame; 'keyframes' samples keyframes only, whatever the fps.",
    )
    queue_size: int = Field(
        16,
        ge=1,
        description="Sampled frames buffered per stream. A live source drops the oldest when it is full; "
        "a file waits. Larger absorbs GPU hiccups and holds more memory.",
    )
    enabled: bool = Field(True, description="Set to false to keep a stream in the file without running it.")


# --------------------------------------------------------------------------------------------- target


class AnchorConfig(_Model):
    """The object that must be present (a COCO class of the detector)."""

    classes: list[str] = Field(
        default_factory=lambda: ["dog"],
        min_length=1,
        description="Detector class names that anchor a part, e.g. [dog] or [cat, dog].",
    )
    min_confidence: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Detector confidence an anchor needs. Lower finds more anchors and more false ones.",
    )


class PartConfig(_Model):
    """The part to label inside each anchor (found by Grounding DINO)."""

    prompt: str = Field(
        "eye",
        min_length=1,
        description="Generic text prompt for the part ('eye', never 'dog eye': compound prompts return the "
        "whole anchor). It is lowercased and ends with a period when sent.",
    )
    name: str | None = Field(None, description="Class name written to the dataset; the prompt when unset.")
    box_threshold: float = Field(
        0.3, ge=0, le=1, description="Grounding box score a part needs. Lower finds more parts, more wrong ones."
    )
    text_threshold: float = Field(
        0.25, ge=0, le=1, description="Score a prompt token needs to name a box. Lower accepts vaguer matches."
    )
    mode: Literal["crop", "full"] = Field(
        "crop",
        description="'crop' grounds on each anchor crop (small parts get resolution); 'full' grounds once on "
        "the whole frame (faster with many anchors, misses small parts).",
    )
    crop_margin: float = Field(
        0.15, ge=0, le=2, description="Margin added around an anchor box before cropping, as a fraction of it."
    )
    min_area_ratio: float = Field(
        0.0005, ge=0, le=1, description="Smallest part box area as a fraction of its anchor box area."
    )
    max_area_ratio: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Largest part box area as a fraction of its anchor box area. Raising it lets whole-anchor "
        "boxes through.",
    )
    max_per_anchor: int = Field(2, ge=1, description="Most parts kept per anchor, best first, after NMS.")
    nms_iou: float = Field(0.5, gt=0, le=1, description="IoU above which overlapping part boxes are merged.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip(" ."):
            raise ValueError("must name the part, e.g. 'eye'")
        return value

    @model_validator(mode="after")
    def _area_bounds(self) -> PartConfig:
        if self.min_area_ratio >= self.max_area_ratio:
            raise ValueError(
                f"min_area_ratio ({self.min_area_ratio}) must be below max_area_ratio ({self.max_area_ratio})"
            )
        return self

    @property
    def class_name(self) -> str:
        return self.name or self.prompt.strip(" .").lower()


class CheckConfig(_Model):
    """One item of the validation checklist."""

    name: str = Field(description="Short identifier of the check, used in verdicts and events.")
    question: str = Field(description="What the vision-language model must confirm.")

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"must be lower_snake_case (got {value!r})")
        return value


DEFAULT_CHECKS: list[dict[str, str]] = [
    {"name": "anchor_visible", "question": "A {anchor} is clearly visible in the image."},
    {
        "name": "part_visible",
        "question": "The {anchor}'s {part} inside the red mask is clearly visible and not closed.",
    },
    {"name": "no_human", "question": "No human or any human body part appears anywhere in the image."},
    {
        "name": "mask_on_part",
        "question": "A red mask is present and lies on the {anchor}'s {part}, not on another object.",
    },
    {
        "name": "mask_quality",
        "question": "The red mask covers the {part} tightly: it does not spill far "
        "outside it and does not miss most of it.",
    },
]


class ValidationConfig(_Model):
    """The checklist a vision-language model judges for every mask. Every check must pass."""

    enabled: bool = Field(
        True, description="Judge every mask. Turning it off stores unjudged labels (confidence 0) in review."
    )
    review_threshold: float = Field(
        0.8,
        ge=0,
        le=1,
        description="A passing verdict below this confidence goes to review/ instead of the dataset. Higher "
        "keeps the dataset cleaner and sends more to a person.",
    )
    checks: list[CheckConfig] = Field(
        default_factory=lambda: [CheckConfig(**c) for c in DEFAULT_CHECKS],
        min_length=1,
        description="Checklist; '{anchor}' and '{part}' in a question are replaced by the target names.",
    )

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, checks: list[CheckConfig]) -> list[CheckConfig]:
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check names must be unique (repeated: {', '.join(dupes)})")
        return checks


class TargetConfig(_Model):
    """What to label: an anchor class and a part inside it."""

    anchor: AnchorConfig = Field(default_factory=AnchorConfig, description="The anchor object.")
    part: PartConfig = Field(default_factory=PartConfig, description="The part inside the anchor.")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="The VLM gate.")


# --------------------------------------------------------------------------------------------- models


class DetectModelConfig(_Model):
    """Stage 1: anchor detector."""

    kind: str = Field("ultralytics", description="Backend: 'ultralytics'.")
    weights: str = Field(
        "yolo11m.pt",
        description="Ultralytics weights: a release name (yolo11m.pt) or a local .pt, OpenVINO folder, .onnx "
        "or .engine.",
    )
    imgsz: int = Field(640, ge=32, description="Inference size in pixels. Larger finds smaller anchors, slower.")
    half: bool = Field(True, description="Half precision on CUDA (ignored on the CPU).")
    max_det: int = Field(
        10, ge=1, description="Most anchors kept per frame, best first. Each one costs a grounding crop."
    )


class GroundModelConfig(_Model):
    """Stage 2: open-vocabulary part grounding."""

    kind: str = Field("transformers", description="Backend: 'transformers' (Grounding DINO).")
    model: str = Field(
        "IDEA-Research/grounding-dino-tiny",
        description="Hugging Face id or local folder of a Grounding DINO checkpoint.",
    )
    batch_size: int = Field(16, ge=1, description="Crops per forward pass. Larger is faster, uses more memory.")


class SegmentModelConfig(_Model):
    """Stage 3: box-prompted segmentation."""

    kind: str = Field("sam2", description="Backend: 'sam2'.")
    model: str = Field(
        "facebook/sam2.1-hiera-tiny",
        description="Hugging Face id of a SAM2 checkpoint; ignored when config and checkpoint are set.",
    )
    config: str | None = Field(
        None,
        description="SAM2 model config: a packaged name (configs/sam2.1/sam2.1_hiera_t.yaml) or a YAML path.",
    )
    checkpoint: str | None = Field(None, description="Local SAM2 checkpoint (.pt) to load with 'config'.")
    keep_largest_component: bool = Field(
        True, description="Keep only the largest connected region of each mask (drops speckles)."
    )
    fill_holes_px: int = Field(64, ge=0, description="Fill holes up to this many pixels inside a mask. 0 keeps holes.")
    polygon_tolerance_px: float = Field(
        1.0,
        ge=0,
        description="Polygon simplification tolerance in pixels. Higher gives shorter labels, coarser shapes.",
    )


class ValidateModelConfig(_Model):
    """Stage 4: vision-language validation."""

    kind: str = Field("ollama", description="Backend: 'ollama' (HTTP) or 'transformers' (in process).")
    model: str = Field(
        "gemma4:e4b",
        description="Ollama model tag, or a Hugging Face id / local folder for 'transformers'.",
    )
    host: str = Field("http://127.0.0.1:11434", description="Ollama server URL.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one verdict.")
    retries: int = Field(3, ge=0, description="Retries of a failed request before the candidate stays pending.")
    concurrency: int = Field(
        2, ge=1, description="Verdicts requested at once. Match it to OLLAMA_NUM_PARALLEL on the server."
    )
    max_new_tokens: int = Field(384, ge=16, description="Longest answer the model may give.")
    crop_scale: float = Field(
        3.0, ge=1, description="Zoomed crop around the part: its box grown by this factor (the model sees both)."
    )


class ModelsConfig(_Model):
    """Model weights and where they run."""

    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Weights dtype for transformers and SAM2; 'auto' is bfloat16 on CUDA, float32 on CPU."
    )
    batch_size: int = Field(
        8, ge=1, description="Sampled frames labeled together (across streams). Larger uses the GPU better."
    )
    detect: DetectModelConfig = Field(default_factory=DetectModelConfig, description="Stage 1.")
    ground: GroundModelConfig = Field(default_factory=GroundModelConfig, description="Stage 2.")
    segment: SegmentModelConfig = Field(default_factory=SegmentModelConfig, description="Stage 3.")
    validate_: ValidateModelConfig = Field(
        default_factory=ValidateModelConfig, alias="validate", description="Stage 4."
    )

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)


# --------------------------------------------------------------------------------------------- store, daemon


class StoreConfig(_Model):
    """Where the dataset is written."""

    path: str = Field("./streamlabel-data", description="Dataset folder (created). Relative to the working dir.")
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of stored frames.")
    keep_rejected: bool = Field(
        False, description="Also write rejected candidates (image, label, verdict) under rejected/ for audits."
    )


class DaemonConfig(_Model):
    """The long-running service."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    stop_timeout_s: float = Field(30.0, gt=0, description="Seconds SIGTERM waits for frames in flight before exiting.")


class Config(_Model):
    """The whole streamlabel configuration file."""

    streams: dict[str, StreamConfig] = Field(
        default_factory=dict, description="Cameras and files by name (letters, digits, '_' and '-')."
    )
    target: TargetConfig = Field(default_factory=TargetConfig, description="What to label.")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="Models per stage.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The dataset store.")
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="The service.")

    @field_validator("streams")
    @classmethod
    def _stream_names(cls, streams: dict[str, StreamConfig]) -> dict[str, StreamConfig]:
        for name in streams:
            if not STREAM_NAME.match(name):
                raise ValueError(
                    f"stream name {name!r} must be 1-64 letters, digits, '_' or '-' (it is used in paths and "
                    "MQTT topics)"
                )
        return streams

    def digest(self) -> str:
        """Short hash of the effective configuration, recorded with every label for provenance."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- loading


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
        value = self._constructor.construct_object(node)
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
