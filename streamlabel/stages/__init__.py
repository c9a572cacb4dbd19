"""The four stages, one class per stage, chosen by ``kind`` in config through the backend registry.

Backends (importing one loads its heavy libraries, so they are looked up by name, not imported here):
``detect.UltralyticsDetector``, ``ground.GroundingDinoGrounder``, ``segment.Sam2Segmenter``,
``validate.OllamaValidator`` and ``validate.TransformersValidator``.
"""

from streamlabel.stages.base import (
    BACKENDS,
    Candidate,
    Detector,
    Grounder,
    ModelUnavailableError,
    Runtime,
    Segmenter,
    Validator,
    ValidatorUnavailableError,
    Verdict,
    backend_factory,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "Candidate",
    "Detector",
    "Grounder",
    "ModelUnavailableError",
    "Runtime",
    "Segmenter",
    "Validator",
    "ValidatorUnavailableError",
    "Verdict",
    "backend_factory",
    "register_backend",
]
