"""``validate.kind: auto`` (the default): Ollama when its host answers, otherwise the local model in process.

At start-up the Ollama host is asked ``GET /api/version`` with a short timeout. An answer picks the ``ollama``
backend. No answer picks the ``transformers`` backend with ``local_model`` when that model is on this machine (a
folder, or a snapshot in the Hugging Face cache), so a box without Ollama still labels, slowly on a CPU. When
neither is there the daemon still starts: it picks Ollama (which may come up a few seconds later), warns once with
both fixes, and candidates stay pending until Ollama answers. The choice is made once, at start-up, and logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from streamlabel.config import TargetConfig, ValidateModelConfig
from streamlabel.redaction import redact
from streamlabel.stages.base import ModelUnavailableError, Runtime, Validator

log = logging.getLogger(__name__)

OLLAMA_PROBE_TIMEOUT_S = 2.0
"""Seconds the start-up question to Ollama may take; a local server answers in milliseconds."""

_VALIDATE_LOGGER = "streamlabel.stages.validate"
_PROBE_WARNING = "not reachable at start-up"


def ollama_answers(host: str, timeout_s: float = OLLAMA_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether an Ollama server answers ``GET {host}/api/version``, and what it said (or why not), for logs."""
    url = host.rstrip("/") + "/api/version"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if response.status_code != httpx.codes.OK:
        return False, f"GET /api/version answered HTTP {response.status_code}"
    try:
        version = response.json().get("version")
    except (ValueError, AttributeError):
        return False, "GET /api/version did not answer with Ollama's JSON"
    return True, f"version {version}"


def local_model_path(model: str) -> Path | None:
    """The folder of ``model`` on this machine (a local folder, or its Hugging Face cache snapshot); None if absent."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached, or not a valid hub id: either way not on this machine
        return None


def auto_validator(cfg: ValidateModelConfig, target: TargetConfig, runtime: Runtime) -> Validator:
    """Build the validator ``kind: auto`` picks (see the module docstring); logs which one and why."""
    host = redact(cfg.host)
    ok, ollama_said = ollama_answers(cfg.host)
    if ok:
        log.info("validator: Ollama at %s answers (%s): using %s through Ollama", host, ollama_said, cfg.model)
        return _ollama(cfg, target, runtime)
    local, local_said = _local(cfg, target, runtime)
    if local is not None:
        log.info(
            "validator: Ollama at %s does not answer (%s): using the local model %s in process on %s",
            host,
            ollama_said,
            cfg.local_model,
            runtime.device,
        )
        return local
    log.warning(
        "validator: Ollama at %s does not answer (%s) and the local model %s is %s; waiting for Ollama, labels "
        "stay pending until it answers. Fix: start Ollama (`ollama serve`, then `ollama pull %s`), or fetch the "
        "local model with `streamlabel models pull -c <config>` and restart",
        host,
        ollama_said,
        cfg.local_model,
        local_said,
        cfg.model,
    )
    return _ollama(cfg, target, runtime, quiet=True)


def _local(cfg: ValidateModelConfig, target: TargetConfig, runtime: Runtime) -> tuple[Validator | None, str]:
    """The in-process validator of ``local_model`` when it is on this machine and loads; else None and why not."""
    folder = local_model_path(cfg.local_model)
    if folder is None:
        return None, "not in a local folder nor in the Hugging Face cache"
    from streamlabel.stages.validate import TransformersValidator

    local_cfg = cfg.model_copy(update={"kind": "transformers", "model": cfg.local_model})
    try:
        return TransformersValidator(local_cfg, target, runtime), ""
    except ModelUnavailableError as exc:
        return None, f"found at {folder} but it did not load: {getattr(exc, 'cause', '') or exc}"


class _DropProbeWarning(logging.Filter):
    """Drops the Ollama backend's own 'not reachable at start-up' warning, already said by ``auto_validator``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _PROBE_WARNING not in record.getMessage()


def _ollama(cfg: ValidateModelConfig, target: TargetConfig, runtime: Runtime, quiet: bool = False) -> Validator:
    from streamlabel.stages.validate import OllamaValidator

    ollama_cfg = cfg.model_copy(update={"kind": "ollama"})
    if not quiet:
        return OllamaValidator(ollama_cfg, target, runtime)
    validate_log, drop = logging.getLogger(_VALIDATE_LOGGER), _DropProbeWarning()
    validate_log.addFilter(drop)
    try:
        return OllamaValidator(ollama_cfg, target, runtime)
    finally:
        validate_log.removeFilter(drop)
