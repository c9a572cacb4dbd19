"""Stage 4: a vision-language model judges every mask against the configured checklist.

Two backends share one conversation (``prompting``) and one rendering (``overlay``): ``ollama`` asks an Ollama
server over HTTP with a JSON-schema ``format``; ``transformers`` runs any ``AutoModelForImageTextToText`` in
process. An unreachable validator raises ValidatorUnavailableError (the candidates stay pending); a model that
answers nonsense gives a failed verdict with its raw text, never an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from streamlabel.config import TargetConfig, ValidateModelConfig
from streamlabel.redaction import redact
from streamlabel.stages.base import (
    Candidate,
    ModelUnavailableError,
    Runtime,
    ValidatorUnavailableError,
    Verdict,
)
from streamlabel.stages.overlay import encode_jpeg, render_views
from streamlabel.stages.prompting import TokenLogprob, build_prompt, parse_verdict, verdict_schema

logger = logging.getLogger(__name__)

RETRY_BACKOFF_S = 1.0
"""First pause between retries of an unreachable Ollama; it doubles with every further retry."""

_SERVER_ERROR = 500  # HTTP status from which a failure is the server's and worth retrying
_NOT_FOUND = 404
_TOO_MANY_REQUESTS = 429


class _ChatValidator:
    """Common part of the backends: prompt, views, timing and parsing; ``_ask`` is the backend's."""

    def __init__(self, cfg: ValidateModelConfig, target: TargetConfig) -> None:
        self.cfg = cfg
        self.model_id = cfg.model
        self._checks = list(target.validation.checks)
        self._check_names = [c.name for c in self._checks]

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        """One verdict per candidate, in input order; ValidatorUnavailableError when the model can't be reached."""
        return [self._judge(item) for item in items]

    def _judge(self, item: Candidate) -> Verdict:
        prompt = build_prompt(self._checks, item.anchor_name, item.part_name)
        frame, crop = render_views(item, self.cfg.crop_scale)
        started = time.perf_counter()
        text, logprobs = self._ask(prompt, (frame, crop))
        latency = time.perf_counter() - started
        verdict = parse_verdict(text, self._check_names, logprobs, model=self.model_id, latency_s=latency)
        logger.debug(
            "verdict %s (%.2f, %s) in %.2fs", verdict.passed, verdict.confidence, verdict.confidence_source, latency
        )
        return verdict

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        raise NotImplementedError


class OllamaValidator(_ChatValidator):
    """Validator backed by an Ollama server (``kind: ollama``).

    Requests run ``cfg.concurrency`` at a time. Connection errors, timeouts, 429 and 5xx answers are retried
    ``cfg.retries`` times with a doubling pause starting at ``retry_backoff_s``; then ValidatorUnavailableError.
    A model the server does not have raises ModelUnavailableError naming ``ollama pull <model>``.
    """

    def __init__(
        self,
        cfg: ValidateModelConfig,
        target: TargetConfig,
        runtime: Runtime | None = None,
        *,
        retry_backoff_s: float = RETRY_BACKOFF_S,
    ) -> None:
        import ollama

        super().__init__(cfg, target)
        self._retry_backoff_s = retry_backoff_s
        self._host = redact(cfg.host)
        self._client = ollama.Client(host=cfg.host, timeout=cfg.timeout_s)
        self._schema = verdict_schema(self._check_names)
        self.probe()

    def probe(self) -> bool:
        """Ask the server about the model at start-up; True when it is there and reads images.

        A server that answers without the model, or with a model that cannot read images, raises
        ModelUnavailableError (the daemon cannot label with it). A server that does not answer only logs a
        warning and returns False: the daemon keeps running and candidates stay pending until it answers.
        """
        import ollama

        try:
            info = self._client.show(self.cfg.model)
        except ollama.ResponseError as exc:
            if exc.status_code == _NOT_FOUND:
                raise self._not_on_server(exc.error) from None
            logger.warning("Ollama at %s answered the start-up probe with %s: %s", self._host, exc.status_code, exc)
            return False
        except Exception as exc:
            logger.warning(
                "Ollama at %s is not reachable at start-up (%s); labels stay pending until it answers",
                self._host,
                exc,
            )
            return False
        caps = list(getattr(info, "capabilities", None) or [])
        if caps and "vision" not in caps:
            raise ModelUnavailableError(
                "validate",
                self.cfg.model,
                f"the Ollama server at {self._host}",
                f"the model cannot read images (capabilities: {', '.join(caps)}); choose a vision model",
            )
        return True

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        """One verdict per candidate, in input order; ValidatorUnavailableError when Ollama can't be reached."""
        if len(items) <= 1:
            return super().validate(items)
        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="validate")
        try:
            return list(pool.map(self._judge, items))
        finally:  # after a failure, requests not yet sent are dropped: the whole batch stays pending
            pool.shutdown(wait=True, cancel_futures=True)

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        message = {"role": "user", "content": prompt, "images": [encode_jpeg(image) for image in images]}
        attempts = self.cfg.retries + 1
        for attempt in range(attempts):
            try:
                response = self._client.chat(
                    model=self.cfg.model,
                    messages=[message],
                    format=self._schema,
                    options={"temperature": 0},
                    logprobs=True,
                )
            except Exception as exc:
                self._raise_unless_retryable(exc)
                logger.warning("Ollama at %s failed (attempt %s of %s): %s", self._host, attempt + 1, attempts, exc)
                if attempt + 1 < attempts:
                    time.sleep(self._retry_backoff_s * 2**attempt)
                continue
            logprobs = [TokenLogprob(lp.token, lp.logprob) for lp in response.logprobs or []]
            return response.message.content or "", logprobs or None
        raise ValidatorUnavailableError(
            f"validator {self.cfg.model!r} at {self._host} did not answer after {attempts} attempts; "
            "the candidates stay pending"
        )

    def _not_on_server(self, error: str) -> ModelUnavailableError:
        return ModelUnavailableError(
            "validate",
            self.cfg.model,
            f"the Ollama server at {self._host}",
            f"{error}; run `ollama pull {self.cfg.model}` on that server",
        )

    def _raise_unless_retryable(self, exc: Exception) -> None:
        """Re-raise what retrying cannot fix; return for connection trouble and server-side errors."""
        import httpx
        import ollama

        if isinstance(exc, ConnectionError | httpx.TransportError):
            return
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code
            if status == _NOT_FOUND:
                raise self._not_on_server(exc.error) from None
            if status >= _SERVER_ERROR or status in (_TOO_MANY_REQUESTS, -1):
                return
            raise ValidatorUnavailableError(
                f"Ollama at {self._host} refused the request for {self.cfg.model!r}: {exc}"
            ) from exc
        if isinstance(exc, ValueError):  # a body that is not Ollama's JSON (a proxy's error page, say)
            return
        raise exc


class TransformersValidator(_ChatValidator):
    """Validator running a Hugging Face image-text-to-text model in process (``kind: transformers``).

    Any ``AutoModelForImageTextToText`` whose processor has a chat template works. Decoding is greedy; the
    per-token log-probabilities of the answer give the decision's confidence. One generation at a time.
    """

    def __init__(self, cfg: ValidateModelConfig, target: TargetConfig, runtime: Runtime) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        super().__init__(cfg, target)
        self._runtime = runtime
        self._lock = threading.Lock()
        self.tokens_generated = 0
        """Answer tokens generated since start-up (the benchmark reads tokens per second from it)."""
        try:
            self._processor = AutoProcessor.from_pretrained(cfg.model)
            model = AutoModelForImageTextToText.from_pretrained(cfg.model, dtype=runtime.torch_dtype())
        except (OSError, ValueError) as exc:  # ValueError: a folder of a model that is not image-text-to-text
            raise ModelUnavailableError(
                "validate", cfg.model, "local folders and the Hugging Face cache", str(exc).splitlines()[0]
            ) from exc
        self._model = model.to(runtime.device).eval()

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        import torch

        inputs = self._inputs(prompt, images)
        with self._lock, torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=self.cfg.max_new_tokens,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
            )
            new_ids = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()
            self.tokens_generated += len(new_ids)
        text = self._processor.decode(new_ids, skip_special_tokens=True)
        return text, self._token_logprobs(new_ids, out.logits)

    def _inputs(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> Any:
        from PIL import Image

        content = [{"type": "image", "image": Image.fromarray(image)} for image in images]
        content.append({"type": "text", "text": prompt})
        inputs = self._processor.apply_chat_template(
            [{"role": "user", "content": content}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        inputs = inputs.to(self._runtime.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        return inputs

    def _token_logprobs(self, token_ids: list[int], logits: Sequence[Any]) -> list[TokenLogprob]:
        import torch

        out = []
        for token_id, step in zip(token_ids, logits, strict=False):
            logprob = torch.log_softmax(step[0].float(), dim=-1)[token_id].item()
            out.append(TokenLogprob(self._processor.decode([token_id], skip_special_tokens=True), logprob))
        return out
