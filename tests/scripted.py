"""TEST FIXTURE: a scripted validator that passes every candidate (never a product feature).

The tiny random-weight VLM cannot produce a passing verdict, so the tests that need labels in the dataset swap in
this backend under the kind ``scripted``.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamlabel.stages.base import Candidate, Verdict, register_backend


class PassingValidator:
    """Judges every candidate as passed with a fixed confidence."""

    model_id = "scripted-pass"

    def __init__(self, cfg: object, target: object, runtime: object, confidence: float = 0.9) -> None:
        self.checks = [c.name for c in target.validation.checks]  # type: ignore[attr-defined]
        self.confidence = confidence

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        return [
            Verdict(
                True,
                self.confidence,
                dict.fromkeys(self.checks, True),
                "scripted",
                self.model_id,
                confidence_source="stated",
            )
            for _ in items
        ]


def register() -> None:
    register_backend("validate", "scripted", PassingValidator)
