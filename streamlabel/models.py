"""``streamlabel models pull``: fetch every configured weight so the daemon can start offline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from streamlabel.config import Config
from streamlabel.redaction import redact

log = logging.getLogger(__name__)


def _hf_snapshot(model: str) -> str:
    if Path(model).expanduser().exists():
        return f"local folder {Path(model).expanduser()}"
    from huggingface_hub import snapshot_download

    return snapshot_download(model)


def _pull_detect(cfg: Config) -> str:
    from streamlabel.stages.detect import load_yolo

    model = load_yolo(cfg.models.detect.weights)
    return str(getattr(model, "ckpt_path", None) or cfg.models.detect.weights)


def _pull_segment(cfg: Config) -> str:
    seg = cfg.models.segment
    if seg.config and seg.checkpoint:
        if not Path(seg.checkpoint).expanduser().is_file():
            raise FileNotFoundError(f"checkpoint {seg.checkpoint} does not exist (local files are not fetched)")
        return f"local checkpoint {seg.checkpoint}"
    if Path(seg.model).expanduser().exists():
        return f"local folder {seg.model}"
    from huggingface_hub import hf_hub_download
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    if seg.model not in HF_MODEL_ID_TO_FILENAMES:
        raise ValueError(f"{seg.model!r} is not a SAM2 hub id (known: {', '.join(HF_MODEL_ID_TO_FILENAMES)})")
    _, ckpt_name = HF_MODEL_ID_TO_FILENAMES[seg.model]
    return hf_hub_download(repo_id=seg.model, filename=ckpt_name)


def _pull_validate(cfg: Config) -> str:
    """'auto' fetches what the daemon would pick: the Ollama model when Ollama answers, else the local model."""
    v = cfg.models.validate_
    if v.kind == "openai":
        return f"nothing to fetch: the server at {redact(v.base_url)} loads {v.model} itself"
    if v.kind == "auto":
        from streamlabel.stages.validate_auto import ollama_answers

        ok, said = ollama_answers(v.host)
        if not ok:
            return f"Ollama at {redact(v.host)} does not answer ({said}); {_hf_snapshot(v.local_model)}"
    if v.kind in ("ollama", "auto"):
        import ollama

        ollama.Client(host=v.host, timeout=None).pull(v.model)
        return f"ollama {redact(v.host)} has {v.model}"
    return _hf_snapshot(v.model)


def fetch_failure(exc: BaseException) -> str:
    """Why a fetch failed, without the "run `models pull`" advice that ModelUnavailableError gives the daemon."""
    from streamlabel.stages.base import ModelUnavailableError

    if isinstance(exc, ModelUnavailableError):
        why = exc.cause or f"not found in {exc.looked}"
        return f"{why} (is there network access to the model's hub or server?)"
    return f"{type(exc).__name__}: {exc}"


def pull_all(cfg: Config, console: Console) -> list[str]:
    """Fetch each stage's weights; print one line per stage and return the stages that failed."""
    steps: list[tuple[str, str, Callable[[], str]]] = [
        ("detect", cfg.models.detect.weights, lambda: _pull_detect(cfg)),
        ("ground", cfg.models.ground.model, lambda: _hf_snapshot(cfg.models.ground.model)),
        ("segment", cfg.models.segment.checkpoint or cfg.models.segment.model, lambda: _pull_segment(cfg)),
    ]
    if cfg.target.validation.enabled:
        steps.append(("validate", cfg.models.validate_.model, lambda: _pull_validate(cfg)))
    failures = []
    for stage, model, fetch in steps:
        console.print(f"{stage}: fetching {model} …", highlight=False)
        try:
            where = fetch()
        except Exception as exc:  # every failure is reported per stage; the others still get fetched
            failures.append(stage)
            console.print(f"[red]{stage}: {model} could not be fetched: {fetch_failure(exc)}[/]", highlight=False)
            continue
        console.print(f"[green]{stage}: ok[/] ({where})", highlight=False)
    return failures
