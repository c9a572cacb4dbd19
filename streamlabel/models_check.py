"""``streamlabel models check``: is every configured model on this machine (or on its server)? All at once.

Nothing is downloaded or loaded: local paths are looked at, Hugging Face ids are looked up in the local cache only,
Ultralytics release names in its weights folder, and an Ollama model is asked of its server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamlabel.config import Config

log = logging.getLogger(__name__)

PULL_HINT = "streamlabel models pull -c <config>"
OLLAMA_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Availability:
    """One configured model: found (and where) or missing (and the fix)."""

    stage: str
    model: str
    found: bool
    where: str


def _hf_cached(model: str) -> tuple[bool, str]:
    path = Path(model).expanduser()
    if path.exists():
        return True, f"local folder {path}"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return True, snapshot_download(model, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return False, f"not in the Hugging Face cache; run `{PULL_HINT}` or set a local folder"


def _detect(cfg: Config) -> tuple[bool, str]:
    weights = cfg.models.detect.weights
    path = Path(weights).expanduser()
    if path.exists():
        return True, f"local {path}"
    from ultralytics.utils import SETTINGS

    cached = Path(SETTINGS.get("weights_dir", "")) / weights
    if cached.exists():
        return True, f"Ultralytics weights_dir {cached}"
    return False, f"not at {path.resolve()} nor in Ultralytics' weights_dir; run `{PULL_HINT}` or set a local path"


def _segment(cfg: Config) -> tuple[bool, str]:
    seg = cfg.models.segment
    if seg.config and seg.checkpoint:
        ckpt = Path(seg.checkpoint).expanduser()
        return (True, f"local checkpoint {ckpt}") if ckpt.is_file() else (False, f"checkpoint {ckpt} does not exist")
    if Path(seg.model).expanduser().exists():
        return True, f"local folder {seg.model}"
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    if seg.model not in HF_MODEL_ID_TO_FILENAMES:
        return False, f"not a local folder nor a SAM2 hub id (known: {', '.join(HF_MODEL_ID_TO_FILENAMES)})"
    try:
        return True, hf_hub_download(seg.model, HF_MODEL_ID_TO_FILENAMES[seg.model][1], local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        return False, f"not in the Hugging Face cache; run `{PULL_HINT}` or set a local checkpoint"


def _ollama(host: str, model: str) -> tuple[bool, str]:
    import ollama

    from streamlabel.redaction import redact

    try:
        ollama.Client(host=host, timeout=OLLAMA_PROBE_TIMEOUT_S).show(model)
    except ollama.ResponseError as exc:
        return False, f"the Ollama server at {redact(host)} answered: {exc.error}; run `ollama pull {model}` there"
    except Exception as exc:  # connection refused, timeout, a proxy's error page: the server is not usable
        return False, f"the Ollama server at {redact(host)} does not answer ({type(exc).__name__}); start it"
    return True, f"the Ollama server at {redact(host)}"


def _validate(cfg: Config) -> tuple[bool, str]:
    v = cfg.models.validate_
    if v.kind == "ollama":
        return _ollama(v.host, v.model)
    if v.kind == "transformers":
        return _hf_cached(v.model)
    return True, f"kind {v.kind!r}: checked when the daemon starts"


def check_all(cfg: Config) -> list[Availability]:
    """One row per configured model; never raises for a missing model (that is what the rows say)."""
    steps: list[tuple[str, str, Callable[[], tuple[bool, str]]]] = [
        ("detect", cfg.models.detect.weights, lambda: _detect(cfg)),
        ("ground", cfg.models.ground.model, lambda: _hf_cached(cfg.models.ground.model)),
        ("segment", cfg.models.segment.checkpoint or cfg.models.segment.model, lambda: _segment(cfg)),
    ]
    if cfg.target.validation.enabled:
        steps.append(("validate", cfg.models.validate_.model, lambda: _validate(cfg)))
    rows = []
    for stage, model, look in steps:
        try:
            found, where = look()
        except Exception as exc:  # a broken cache or library: say so on this row, check the others
            found, where = False, f"could not be checked: {type(exc).__name__}: {exc}"
        rows.append(Availability(stage, model, found, where))
    return rows
