"""TEST FIXTURE: a scripted stand-in for an Ollama server, speaking just enough of ``POST /api/chat``,
``POST /api/show`` and ``GET /api/version``.

Not part of streamlabel. It lets the Ollama validator run against real HTTP on 127.0.0.1 (a free port) without a
model: each request gets the next ``Reply`` of ``script`` (or ``default`` when the script is empty); a reply may
also be a function of the request body. Answers have Ollama's non-streaming shape (``model``, ``created_at``,
``message``, ``done``, ``done_reason``, durations and counts, optional ``logprobs``), and errors its
``{"error": ...}`` body with the status code. Like Ollama 0.12.11+, ``logprobs`` entries carry ``top_logprobs``
only when the request asked for them (``top_logprobs`` > 0), at most that many. Every request body is kept in
``requests`` for assertions.
"""

from __future__ import annotations

import json
import math
import re
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_S = 0.02  # how often the server loop checks for shutdown; keeps teardown fast
_PIECES = re.compile(r"\s?\w+|\s?[^\w\s]+|\s+")  # BPE-like: a word or a run of punctuation, with its leading space
_CERTAIN = 0.995  # probability of an ordinary answer token; the rest goes to one alternative
_OFF_GRAMMAR = 0.04  # mass on a token the format grammar forbids (a newline), as Ollama reports before the grammar


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a message, or an HTTP error; optionally after a delay.

    ``logprobs``: (token, logprob) per answer token; ``top``: the alternatives at each token, sent as
    ``top_logprobs`` when the request asks for them.
    """

    content: str = ""
    logprobs: list[tuple[str, float]] | None = None
    status: int = 200
    error: str = ""
    delay_s: float = 0.0
    top: list[list[tuple[str, float]]] | None = None

    @classmethod
    def answer(cls, obj: dict[str, Any], check_probs: dict[str, float] | None = None) -> Reply:
        """A JSON answer; with ``check_probs``, per-token logprobs with alternatives, like a real model's.

        Every ordinary token is near-certain, the decision included. At each check's value token the model gives
        P(true) = ``check_probs[name]`` (default 0.99), split over the spellings ' true'/' True' and ' false', plus
        some mass on a newline that the grammar forbids; the chosen token is the one ``obj`` says.
        """
        content = json.dumps(obj)
        if check_probs is None:
            return cls(content=content)
        tokens = _PIECES.findall(content)
        checks = obj.get("checks") or {}
        pieces = [_value_token(tokens, i, checks, check_probs) or _ordinary(token) for i, token in enumerate(tokens)]
        return cls(content=content, logprobs=[p[0] for p in pieces], top=[p[1] for p in pieces])

    @classmethod
    def model_not_found(cls, model: str) -> Reply:
        return cls(status=404, error=f'model "{model}" not found, try pulling it first')

    @classmethod
    def server_error(cls) -> Reply:
        return cls(status=500, error="llama runner process has terminated: exit status 2")


def _ordinary(token: str) -> tuple[tuple[str, float], list[tuple[str, float]]]:
    chosen = (token, math.log(_CERTAIN))
    return chosen, [chosen, ("\n", math.log(1 - _CERTAIN))]


def _value_token(
    tokens: list[str], i: int, checks: dict[str, Any], check_probs: dict[str, float]
) -> tuple[tuple[str, float], list[tuple[str, float]]] | None:
    """The logprob and alternatives of a check's value token (' true' after '"name":'), None for other tokens."""
    if tokens[i].strip() not in ("true", "false") or i < 2 or tokens[i - 1] != '":':
        return None
    name = tokens[i - 2].strip()
    if name not in checks:
        return None
    p_true = check_probs.get(name, 0.99)
    grammar = 1 - _OFF_GRAMMAR
    top = [
        (" true", math.log(grammar * p_true * 0.9)),
        (" True", math.log(grammar * p_true * 0.1)),
        (" false", math.log(grammar * (1 - p_true))),
        ("\n", math.log(_OFF_GRAMMAR)),
    ]
    top.sort(key=lambda alt: -alt[1])
    chosen = " true" if checks[name] else " false"
    return (chosen, dict(top)[chosen]), top


Responder = Reply | Callable[[dict[str, Any]], Reply]


class FakeOllama:
    """Threaded HTTP server on 127.0.0.1:<free port>; use as a context manager, point the client at ``url``."""

    def __init__(
        self,
        default: Responder | None = None,
        models: dict[str, list[str]] | None = None,
        version: str | None = "0.0.0-fake",
    ) -> None:
        """``models``: tag -> capabilities that ``/api/show`` knows; None knows every tag as a vision model.

        ``version``: what ``GET /api/version`` says (None: 404, as a server that has no such route).
        """
        self.default: Responder = default or Reply(content="{}")
        self.models = models
        self.version = version
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


def chat_body(model: str, reply: Reply, top_logprobs: int = 0) -> dict[str, Any]:
    """A non-streaming /api/chat response in Ollama's shape; ``top_logprobs``: alternatives per token to include."""
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
        tops = reply.top or [[] for _ in reply.logprobs]
        body["logprobs"] = [
            _logprob(token, logprob)
            | ({"top_logprobs": [_logprob(*alt) for alt in top[:top_logprobs]]} if top_logprobs else {})
            for (token, logprob), top in zip(reply.logprobs, tops, strict=True)
        ]
    return body


def _logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _handler_for(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/api/version" and fake.version is not None:  # asked at start-up (auto, ollama)
                self._send(200, {"version": fake.version})
            else:
                self._send(404, {"error": "404 page not found"})

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
            self._send(200, chat_body(body.get("model", ""), reply, int(body.get("top_logprobs") or 0)))

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


class SilentServer:
    """A TCP server on 127.0.0.1:<free port> that accepts connections and reads requests but never answers.

    The hung validator: connecting works, every request waits for its timeout. ``connections`` counts accepts.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(POLL_S)
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._open:
            conn.close()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._sock, *self._open], [], [], POLL_S)
            for sock in readable:
                if sock is self._sock:
                    conn, _ = self._sock.accept()
                    self._open.append(conn)
                    self.connections += 1
                elif not _read(sock):  # the client gave up and closed: forget it
                    self._open.remove(sock)
                    sock.close()


def _read(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:  # reset by the client
        return b""
