"""TEST FIXTURE: a scripted stand-in for an Ollama server, speaking just enough of ``POST /api/chat``.

Not part of streamlabel. It lets the Ollama validator run against real HTTP on 127.0.0.1 (a free port) without a
model: each request gets the next ``Reply`` of ``script`` (or ``default`` when the script is empty); a reply may
also be a function of the request body. Answers have Ollama's non-streaming shape (``model``, ``created_at``,
``message``, ``done``, ``done_reason``, durations and counts, optional ``logprobs``), and errors its
``{"error": ...}`` body with the status code. Every request body is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_S = 0.02  # how often the server loop checks for shutdown; keeps teardown fast
_PIECES = re.compile(r"\w+|\s+|[^\w\s]")  # a crude tokenizer: words, spaces, single punctuation marks


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a message, or an HTTP error; optionally after a delay."""

    content: str = ""
    logprobs: list[tuple[str, float]] | None = None
    status: int = 200
    error: str = ""
    delay_s: float = 0.0

    @classmethod
    def answer(cls, obj: dict[str, Any], decision_logprob: float | None = None) -> Reply:
        """A JSON answer; with ``decision_logprob``, per-token logprobs where the decision token has that value."""
        content = json.dumps(obj)
        if decision_logprob is None:
            return cls(content=content)
        tokens = _PIECES.findall(content)
        decision = obj.get("decision")
        return cls(content=content, logprobs=[(t, decision_logprob if t == decision else 0.0) for t in tokens])

    @classmethod
    def model_not_found(cls, model: str) -> Reply:
        return cls(status=404, error=f'model "{model}" not found, try pulling it first')

    @classmethod
    def server_error(cls) -> Reply:
        return cls(status=500, error="llama runner process has terminated: exit status 2")


Responder = Reply | Callable[[dict[str, Any]], Reply]


class FakeOllama:
    """Threaded HTTP server on 127.0.0.1:<free port>; use as a context manager, point the client at ``url``."""

    def __init__(self, default: Responder | None = None, models: dict[str, list[str]] | None = None) -> None:
        """``models``: tag -> capabilities that ``/api/show`` knows; None knows every tag as a vision model."""
        self.default: Responder = default or Reply(content="{}")
        self.models = models
        self.script: deque[Responder] = deque()
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_S,), name="fake-ollama", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeOllama:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        """Record ``body`` and return the reply for it."""
        with self._lock:
            self.requests.append(body)
            responder = self.script.popleft() if self.script else self.default
        return responder(body) if callable(responder) else responder


def chat_body(model: str, reply: Reply) -> dict[str, Any]:
    """A non-streaming /api/chat response in Ollama's shape."""
    body: dict[str, Any] = {
        "model": model,
        "created_at": "2025-01-01T00:00:00.000000Z",
        "message": {"role": "assistant", "content": reply.content},
        "done_reason": "stop",
        "done": True,
        "total_duration": 1_000_000,
        "load_duration": 1_000,
        "prompt_eval_count": 100,
        "prompt_eval_duration": 100_000,
        "eval_count": len(reply.logprobs or []) or 1,
        "eval_duration": 100_000,
    }
    if reply.logprobs is not None:
        body["logprobs"] = [
            {"token": token, "logprob": logprob, "bytes": list(token.encode())} for token, logprob in reply.logprobs
        ]
    return body


def _handler_for(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path == "/api/show":
                self._show(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"))
                return
            if self.path != "/api/chat":
                self._send(404, {"error": "404 page not found"})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            reply = fake.next_reply(body)
            if reply.delay_s:
                fake.stopping.wait(reply.delay_s)
            if reply.status != 200:
                self._send(reply.status, {"error": reply.error})
                return
            self._send(200, chat_body(body.get("model", ""), reply))

        def _show(self, body: dict[str, Any]) -> None:
            name = body.get("model") or body.get("name") or ""
            if fake.models is not None and name not in fake.models:
                self._send(404, {"error": f"model '{name}' not found"})
                return
            caps = ["completion", "vision"] if fake.models is None else fake.models[name]
            self._send(200, {"modelfile": "", "parameters": "", "template": "", "model_info": {}, "capabilities": caps})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            return

    return Handler
