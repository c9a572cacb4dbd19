"""Stage interfaces, the Verdict type, the runtime (device, dtype) and the backend registry.

A backend is chosen by ``kind`` in its config section. The registry maps ``(stage, kind)`` to a factory given as
``"module:function"`` so that nothing heavy (torch, transformers) is imported until a stage is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import supervision as sv

StageName = Literal["detect", "ground", "segment", "validate"]


class ModelUnavailableError(RuntimeError):
    """A model's weights are not on this machine and could not be fetched.

    The message names the model, where it was looked for, and the command that fixes it.
    """

    def __init__(self, stage: str, model: str, looked: str, cause: str = "") -> None:
        self.stage, self.model, self.looked, self.cause = stage, model, looked, cause
        hint = "streamlabel models pull -c <config>"
        text = f"{stage} model {model!r} is not available: looked in {looked}"
        if cause:
            text += f" ({cause})"
        text += f". Fetch it on a machine with network access with `{hint}`, or point the config at a local copy."
        super().__init__(text)


@dataclass(frozen=True)
class Runtime:
    """Where models run: a torch device string, a dtype name ('float32', 'float16', 'bfloat16') and a
    torch.compile mode ('off', 'default', 'reduce-overhead', 'max-autotune'; ``stages.compiling``)."""

    device: str = "cpu"
    dtype: str = "float32"
    compile: str = "off"

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @classmethod
    def resolve(cls, device: str = "auto", dtype: str = "auto", compile_mode: str = "off") -> Runtime:
        """Pick CUDA when asked for 'auto' and present; bfloat16 on CUDA, float32 on the CPU for 'auto'."""
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"models.device is {device!r} but CUDA is not available on this machine")
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        return cls(device=device, dtype=dtype, compile=compile_mode)


@dataclass(frozen=True)
class Verdict:
    """The validator's judgement of one mask.

    Attributes:
        passed: every check passed.
        confidence: 0-1; how sure the model is of ``passed``.
        checks: check name -> passed.
        reason: the model's short explanation, or why no judgement was possible.
        model: model id that judged.
        latency_s: seconds the judgement took.
        confidence_source: 'logprobs' (the checks' P(true) combined, see ``stages.confidence``), 'stated' (the
            model's own number), 'detector' (a check answered by the detector, e.g. a person in the frame) or 'none'.
        raw: the model's raw answer, kept when it could not be parsed.
        observation: what the model said it sees, before judging.
        reused: the verdict was carried over from an earlier frame of the same track.
        check_probs: check name -> probability that the check's answer is true, from the model's token
            log-probabilities (empty when the backend gave none).
    """

    passed: bool
    confidence: float
    checks: dict[str, bool] = field(default_factory=dict)
    reason: str = ""
    model: str = ""
    latency_s: float = 0.0
    confidence_source: Literal["logprobs", "stated", "detector", "none"] = "none"
    raw: str | None = None
    observation: str = ""
    reused: bool = False
    check_probs: dict[str, float] = field(default_factory=dict)

    def failed_checks(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]


@dataclass(frozen=True)
class Candidate:
    """One mask to validate: the frame, the part (a one-row Detections with mask) and its anchor box."""

    image: np.ndarray
    part: sv.Detections
    anchor_xyxy: np.ndarray
    anchor_name: str
    part_name: str


class ValidatorUnavailableError(RuntimeError):
    """The validator could not be reached; the candidate stays pending and is retried later."""


class Detector(Protocol):
    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]: ...


class Grounder(Protocol):
    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]: ...


class Segmenter(Protocol):
    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]: ...


class Validator(Protocol):
    model_id: str

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]: ...


BACKENDS: dict[tuple[str, str], str] = {
    ("detect", "ultralytics"): "streamlabel.stages.detect:UltralyticsDetector",
    ("ground", "transformers"): "streamlabel.stages.ground:GroundingDinoGrounder",
    ("segment", "sam2"): "streamlabel.stages.segment:Sam2Segmenter",
    ("validate", "ollama"): "streamlabel.stages.validate:OllamaValidator",
    ("validate", "transformers"): "streamlabel.stages.validate:TransformersValidator",
    ("validate", "openai"): "streamlabel.stages.validate_openai:OpenAIValidator",
    ("validate", "auto"): "streamlabel.stages.validate_auto:auto_validator",
}


def register_backend(stage: StageName, kind: str, target: str | Callable[..., Any]) -> None:
    """Make ``kind`` available for ``stage``; ``target`` is a factory or a ``"module:attr"`` string."""
    BACKENDS[(stage, kind)] = target  # type: ignore[assignment]


def backend_factory(stage: StageName, kind: str) -> Callable[..., Any]:
    """Return the factory registered for ``(stage, kind)``; ValueError naming the known kinds otherwise."""
    target: Any = BACKENDS.get((stage, kind))
    if target is None:
        known = sorted(k for s, k in BACKENDS if s == stage)
        raise ValueError(f"models.{stage}.kind: unknown backend {kind!r} (known: {', '.join(known)})")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target


def empty_detections() -> sv.Detections:
    """Detections with no rows (xyxy shape (0, 4))."""
    return sv.Detections.empty()
