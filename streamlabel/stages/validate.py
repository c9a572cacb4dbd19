"""Stage 4: a vision-language model judges every mask against the configured checklist.

Two backends share one conversation (``prompting``) and one rendering (``overlay``): ``ollama`` asks an Ollama
server over HTTP with a JSON-schema ``format``; ``transformers`` runs any ``AutoModelForImageTextToText`` in
process, constrained to the same schema while it generates (``verdict_grammar``). Both hand the answer tokens'
log-probabilities with their top alternatives to the parser, which reads each check's P(true) from them
(``confidence``). An unreachable validator raises ValidatorUnavailableError (the candidates stay pending) within
``max_wait_s`` per candidate; a model that answers nonsense gives a failed verdict with its raw text, never an
exception.
"""

from __future__ import annotations

import logging
import re
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
from streamlabel.stages.budget import RETRY_BACKOFF_S, OutageLog, WaitBudget
from streamlabel.stages.confidence import TOP_LOGPROBS, TokenLogprob, logits_logprobs
from streamlabel.stages.overlay import encode_jpeg, render_views
from streamlabel.stages.prompting import build_prompt, parse_verdict, verdict_schema
from streamlabel.stages.verdict_grammar import TokenVocabulary, VerdictConstraint, VerdictGrammar

log = logging.getLogger(__name__)

OLLAMA_LOGPROBS_VERSION = (0, 12, 11)
"""First Ollama release whose /api/chat returns token log-probabilities (and their top alternatives)."""

_SERVER_ERROR = 500  # HTTP status from which a failure is the server's and worth retrying
_NOT_FOUND = 404
_TOO_MANY_REQUESTS = 429
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``'0.12.11'`` (or ``'v0.12.11-rc1'``) -> (0, 12, 11); None when it is not a version."""
    match = _VERSION.match(text.strip())
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


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
        log.debug(
            "verdict %s (%.2f, %s) in %.2fs", verdict.passed, verdict.confidence, verdict.confidence_source, latency
        )
        return verdict

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        raise NotImplementedError


class OllamaValidator(_ChatValidator):
    """Validator backed by an Ollama server (``kind: ollama``).

    Requests run ``cfg.concurrency`` at a time. Connection errors, timeouts, 429 and 5xx answers are retried
    ``cfg.retries`` times with a doubling pause starting at ``retry_backoff_s``, all within ``cfg.max_wait_s`` per
    candidate (``WaitBudget``); then ValidatorUnavailableError. A model the server does not have raises
    ModelUnavailableError naming ``ollama pull <model>``. Answers come with ``top_logprobs`` alternatives per token.
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
        self._outage = OutageLog(log, self._host)
        self._timeout_s = min(cfg.timeout_s, cfg.max_wait_s)
        self._client = ollama.Client(host=cfg.host, timeout=self._timeout_s)
        self._schema = verdict_schema(self._check_names)
        self.server_version: str | None = None
        """What the server's ``GET /api/version`` said at start-up (None: it did not say)."""
        self._said_no_logprobs = False
        self._said_lock = threading.Lock()
        self.probe()

    def probe(self) -> bool:
        """Ask the server about the model at start-up; True when it is there and reads images.

        A server that answers without the model, or with a model that cannot read images, raises
        ModelUnavailableError (the daemon cannot label with it). A server that does not answer only logs a
        warning and returns False: the daemon keeps running and candidates stay pending until it answers. A server
        older than 0.12.11 gets a warning: it returns no log-probabilities, so confidence is the stated number.
        """
        import ollama

        try:
            info = self._client.show(self.cfg.model)
        except ollama.ResponseError as exc:
            if exc.status_code == _NOT_FOUND:
                raise self._not_on_server(exc.error) from None
            log.warning("Ollama at %s answered the start-up probe with %s: %s", self._host, exc.status_code, exc)
            return False
        except Exception as exc:
            log.warning(
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
        self._check_version()
        return True

    def _check_version(self) -> None:
        """Ask the server's version; warn when it is too old to return log-probabilities."""
        self.server_version = self._server_version()
        version = parse_version(self.server_version or "")
        if version is None or version == (0, 0, 0):  # unknown, or a development build: assume it is current
            log.debug("Ollama at %s reports version %r", self._host, self.server_version)
            return
        if version < OLLAMA_LOGPROBS_VERSION:
            log.warning(
                "Ollama at %s is version %s: token log-probabilities need Ollama %s or later, so verdict confidence "
                "will be the model's own stated number (confidence_source 'stated', nearly always high, so "
                "target.validation.review_threshold rarely acts); upgrade Ollama on that server",
                self._host,
                self.server_version,
                ".".join(map(str, OLLAMA_LOGPROBS_VERSION)),
            )

    def _server_version(self) -> str | None:
        """``GET /api/version`` of the configured host (the ollama client has no call for it); None on failure."""
        import httpx

        base = self.cfg.host if "://" in self.cfg.host else f"http://{self.cfg.host}"
        try:
            reply = httpx.get(f"{base.rstrip('/')}/api/version", timeout=self._timeout_s)
            reply.raise_for_status()
            version = reply.json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.debug("Ollama at %s did not say its version: %s", self._host, exc)
            return None
        return version if isinstance(version, str) else None

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        """One verdict per candidate, in input order; ValidatorUnavailableError when Ollama can't be reached.

        Each candidate waits at most ``max_wait_s``; once one of them finds Ollama unavailable, the candidates not
        yet sent are not sent, so a batch against a hung server ends after about ``max_wait_s``, not one round of
        ``concurrency`` candidates after another.
        """
        if len(items) <= 1:
            return super().validate(items)
        gave_up = threading.Event()

        def judge(item: Candidate) -> Verdict:
            if gave_up.is_set():
                raise ValidatorUnavailableError(f"validator {self.cfg.model!r} at {self._host} is unavailable")
            try:
                return self._judge(item)
            except ValidatorUnavailableError:
                gave_up.set()
                raise

        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="validate")
        try:
            return list(pool.map(judge, items))
        finally:  # after a failure, requests not yet sent are dropped: the whole batch stays pending
            pool.shutdown(wait=True, cancel_futures=True)

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        message = {"role": "user", "content": prompt, "images": [encode_jpeg(image) for image in images]}
        budget = WaitBudget(self.cfg, self._retry_backoff_s)
        for timeout_s in budget.attempts():
            try:
                response = self._chat(message, timeout_s)
            except Exception as exc:
                self._raise_unless_retryable(exc)
                self._outage.failed(
                    "Ollama at %s failed (attempt %s of %s, %.1f s of max_wait_s left): %s",
                    self._host,
                    budget.tried,
                    self.cfg.retries + 1,
                    max(0.0, budget.left_s()),
                    exc,
                )
                continue
            self._outage.answered()
            return response.message.content or "", self._logprobs_of(response)
        raise budget.unavailable(f"validator {self.cfg.model!r} at {self._host}")

    def _chat(self, message: dict[str, Any], timeout_s: float) -> Any:
        """One /api/chat request; a timeout cut short by the budget gets a client of its own for that request."""
        import ollama

        client = self._client if timeout_s >= self._timeout_s else ollama.Client(host=self.cfg.host, timeout=timeout_s)
        try:
            return client.chat(
                model=self.cfg.model,
                messages=[message],
                format=self._schema,
                options={"temperature": 0},
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
            )
        finally:
            if client is not self._client and hasattr(client, "close"):  # close() is not in every ollama release
                client.close()

    def _logprobs_of(self, response: Any) -> list[TokenLogprob] | None:
        """The answer tokens with their top alternatives; None (and one warning per validator) when there are none."""
        items = response.logprobs or []
        if not items:
            self._say_no_logprobs_once()
            return None
        return [
            TokenLogprob(lp.token, lp.logprob, tuple((alt.token, alt.logprob) for alt in lp.top_logprobs or ()))
            for lp in items
        ]

    def _say_no_logprobs_once(self) -> None:
        with self._said_lock:
            if self._said_no_logprobs:
                return
            self._said_no_logprobs = True
        version = self.server_version or self._server_version() or "unknown"
        log.warning(
            "Ollama at %s (version %s) returned no token log-probabilities; verdict confidence falls back to the "
            "model's stated number (confidence_source 'stated'). Per-check confidence needs Ollama %s or later",
            self._host,
            version,
            ".".join(map(str, OLLAMA_LOGPROBS_VERSION)),
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

    Any ``AutoModelForImageTextToText`` whose processor has a chat template works. Decoding is greedy and
    constrained to the verdict's JSON (``VerdictConstraint``), so the answer always parses; it ends within
    ``max_new_tokens`` (ValueError at start-up when that is too few for the checklist). The raw logits give every
    answer token's top alternatives, hence the checks' probabilities. One generation at a time.
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
        self._grammar = VerdictGrammar(self._vocabulary(), self._check_names, cfg.max_new_tokens)

    def _vocabulary(self) -> TokenVocabulary:
        tokenizer = getattr(self._processor, "tokenizer", self._processor)
        eos = self._model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        return TokenVocabulary(tokenizer, eos if isinstance(eos, list) else [eos])

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        import torch
        from transformers import LogitsProcessorList

        inputs = self._inputs(prompt, images)
        constraint = VerdictConstraint(self._grammar, inputs["input_ids"].shape[1])
        with self._lock, torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=self.cfg.max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([constraint]),
                output_logits=True,
                return_dict_in_generate=True,
            )
            new_ids = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()
            self.tokens_generated += len(new_ids)
            logprobs = logits_logprobs(new_ids, out.logits, self._grammar.vocab.texts, constraint.small_sets)
        text = self._processor.decode(new_ids, skip_special_tokens=True)
        return text, logprobs

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
