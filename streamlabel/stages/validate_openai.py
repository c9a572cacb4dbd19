"""Stage 4 over any OpenAI-compatible chat endpoint (``validate.kind: openai``): vLLM, SGLang, llama.cpp, Ollama /v1.

Batching servers answer many requests at once far faster than one by one, so verdicts are requested
``concurrency`` at a time. The conversation, views and parsing are the other backends' (``_ChatValidator``); only
the transport differs: ``POST {base_url}/chat/completions`` with the two views as JPEG data URLs, the verdict's JSON
schema as ``response_format`` (guided decoding), temperature 0 and the answer tokens' log-probabilities with their
``top_logprobs`` alternatives. The API key goes in the ``Authorization`` header and never into a log line or error.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
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
from streamlabel.stages.confidence import TOP_LOGPROBS, TokenLogprob
from streamlabel.stages.overlay import encode_jpeg
from streamlabel.stages.prompting import verdict_schema
from streamlabel.stages.validate import _ChatValidator

log = logging.getLogger(__name__)

_UNAUTHORIZED = (401, 403)
_NOT_FOUND = 404
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500
_DETAIL_CHARS = 300  # how much of a server's error body an error message quotes


class ValidatorAuthError(ModelUnavailableError):
    """The server refused the API key (401/403): retrying cannot fix it, the config's key must change."""

    def __init__(self, server: str, model: str, status: int, has_key: bool) -> None:
        self.stage, self.model, self.looked, self.cause = "validate", model, server, f"HTTP {status}"
        key = "the key in models.validate.api_key" if has_key else "no key (models.validate.api_key is not set)"
        RuntimeError.__init__(
            self,
            f"the validator server at {server} refused {key} with HTTP {status}; set models.validate.api_key: "
            "${NAME} to a key the server accepts (NAME from the environment or systemd credentials)",
        )


class _RetryableError(Exception):
    """A failure worth another attempt (connection, timeout, 429, 5xx, an unreadable body)."""


class OpenAIValidator(_ChatValidator):
    """Validator backed by an OpenAI-compatible ``/chat/completions`` endpoint (``kind: openai``).

    Requests run ``cfg.concurrency`` at a time. Connection errors, timeouts, 429 and 5xx answers are retried
    ``cfg.retries`` times with a doubling pause starting at ``retry_backoff_s``, all within ``cfg.max_wait_s``
    (``WaitBudget``); then ValidatorUnavailableError. 401/403 raise ValidatorAuthError; a 404 (model not served, or
    a base_url without /v1) ModelUnavailableError.
    """

    def __init__(
        self,
        cfg: ValidateModelConfig,
        target: TargetConfig,
        runtime: Runtime | None = None,
        *,
        retry_backoff_s: float = RETRY_BACKOFF_S,
    ) -> None:
        super().__init__(cfg, target)
        self._retry_backoff_s = retry_backoff_s
        self._server = redact(cfg.base_url.rstrip("/"))
        self._outage = OutageLog(log, self._server)
        self._key = cfg.api_key.get_secret_value() if cfg.api_key else ""
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(
            base_url=cfg.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=min(cfg.timeout_s, cfg.max_wait_s),
            limits=httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency),
        )
        self._response_format = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": verdict_schema(self._check_names), "strict": True},
        }
        try:
            self.probe()
        except ModelUnavailableError:
            self._client.close()
            raise

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def probe(self) -> bool:
        """Ask ``GET {base_url}/models`` at start-up; True when the server serves ``cfg.model``.

        A refused key raises ValidatorAuthError and a server without the model ModelUnavailableError naming the
        models it has; a server that does not answer (or has no /models) only logs a warning and returns False:
        the daemon keeps running and candidates stay pending until it answers.
        """
        try:
            response = self._client.get("models")
        except httpx.HTTPError as exc:
            log.warning(
                "validator server at %s is not reachable at start-up (%s); labels stay pending until it answers",
                self._server,
                self._scrub(str(exc)),
            )
            return False
        if response.status_code in _UNAUTHORIZED:
            raise ValidatorAuthError(self._server, self.cfg.model, response.status_code, bool(self._key))
        if response.status_code != httpx.codes.OK:
            log.warning(
                "validator server at %s answered GET /models with %s; the model is checked on the first verdict",
                self._server,
                response.status_code,
            )
            return False
        served = [str(m.get("id")) for m in _json_or_empty(response).get("data") or [] if isinstance(m, dict)]
        if self.cfg.model not in served:
            raise ModelUnavailableError(
                "validate",
                self.cfg.model,
                f"the models served at {self._server}",
                f"it serves {', '.join(served) or 'none'}; set models.validate.model to one of them, or start the "
                f"server with this model (for vLLM: `vllm serve {self.cfg.model}`)",
            )
        return True

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        """One verdict per candidate, in input order; ValidatorUnavailableError when the server can't be reached."""
        if len(items) <= 1:
            return super().validate(items)
        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="validate-openai")
        try:
            return list(pool.map(self._judge, items))
        finally:  # after a failure, requests not yet sent are dropped: the whole batch stays pending
            pool.shutdown(wait=True, cancel_futures=True)

    def request_body(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        """The chat-completions request for one candidate: both views first, then the checklist prompt."""
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + _b64(image)}} for image in images
        ]
        content.append({"type": "text", "text": prompt})
        return {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": content}],
            "response_format": self._response_format,
            "temperature": 0,
            "max_tokens": self.cfg.max_new_tokens,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }

    def _ask(self, prompt: str, images: tuple[np.ndarray, np.ndarray]) -> tuple[str, list[TokenLogprob] | None]:
        body = self.request_body(prompt, images)
        budget = WaitBudget(self.cfg, self._retry_backoff_s)
        for timeout_s in budget.attempts():
            try:
                answer = self._post(body, timeout_s)
            except _RetryableError as exc:
                self._outage.failed(
                    "validator server at %s failed (attempt %s of %s, %.1f s of max_wait_s left): %s",
                    self._server,
                    budget.tried,
                    self.cfg.retries + 1,
                    max(0.0, budget.left_s()),
                    self._scrub(str(exc)),
                )
                continue
            self._outage.answered()
            return answer
        raise budget.unavailable(f"validator {self.cfg.model!r} at {self._server}")

    def _post(self, body: dict[str, Any], timeout_s: float) -> tuple[str, list[TokenLogprob] | None]:
        """One request; _RetryableError for what another attempt may fix, the final error for what it cannot."""
        try:
            response = self._client.post("chat/completions", json=body, timeout=timeout_s)
        except httpx.TransportError as exc:  # connection refused or reset, timeouts
            raise _RetryableError(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if status == httpx.codes.OK:
            return _read_choice(response)
        detail = self._scrub(response.text[:_DETAIL_CHARS])
        if status in _UNAUTHORIZED:
            raise ValidatorAuthError(self._server, self.cfg.model, status, bool(self._key))
        if status == _NOT_FOUND:
            raise ModelUnavailableError(
                "validate",
                self.cfg.model,
                f"{self._server}/chat/completions",
                f"HTTP 404: {detail}; check that the server serves this model and that models.validate.base_url "
                "ends in /v1",
            )
        if status >= _SERVER_ERROR or status == _TOO_MANY_REQUESTS:
            raise _RetryableError(f"HTTP {status}: {detail}")
        raise ValidatorUnavailableError(
            f"validator server at {self._server} refused the request for {self.cfg.model!r} with HTTP {status}: "
            f"{detail}"
        )

    def _scrub(self, text: str) -> str:
        """``text`` without the API key (a server or proxy may echo the header) and without URL passwords."""
        return redact(text.replace(self._key, "***") if self._key else text)


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(encode_jpeg(image)).decode("ascii")


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_choice(response: httpx.Response) -> tuple[str, list[TokenLogprob] | None]:
    """The first choice's text and token logprobs; a body that is not a completion is retryable (a proxy's page)."""
    choices = _json_or_empty(response).get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _RetryableError(f"HTTP 200 without choices: {response.text[:_DETAIL_CHARS]!r}")
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message, dict) else None
    logprobs = [_token(item) for item in ((choice.get("logprobs") or {}).get("content") or [])]
    return text if isinstance(text, str) else "", logprobs or None


def _token(item: dict[str, Any]) -> TokenLogprob:
    """One OpenAI ``logprobs.content`` entry (with its ``top_logprobs`` alternatives) as a TokenLogprob."""
    top = tuple(
        (str(alt.get("token", "")), float(alt.get("logprob", -math.inf)))
        for alt in item.get("top_logprobs") or []
        if isinstance(alt, dict)
    )
    return TokenLogprob(str(item.get("token", "")), float(item.get("logprob", 0.0)), top)
