"""``ReviewServer``: the review app under uvicorn in a thread, for the daemon and ``streamlabel review``."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from streamlabel.config import Config
from streamlabel.config.review import split_address
from streamlabel.review.app import create_app
from streamlabel.review.refine import refiner_factory
from streamlabel.store.audit import Audits
from streamlabel.store.dataset import DatasetStore

log = logging.getLogger(__name__)


class ReviewConfigError(ValueError):
    """The review section cannot be served as configured; the message names the key and the fix."""


def review_server(cfg: Config, store: DatasetStore, sink: Any = None, segmenter: Any = None) -> ReviewServer | None:
    """The daemon's review page on ``review.address`` (mask fixes over ``segmenter``'s model), or None when off."""
    if cfg.review.address is None:
        return None
    return ReviewServer(cfg, store, sink, required=False, segmenter=segmenter, select_audit=False)


class ReviewServer:
    """Serves the review page on ``review.address`` (or ``address``) until ``stop``.

    ``required`` False (the daemon): a page that cannot bind its address is logged as an error and the daemon
    labels on without it; True (``streamlabel review``): ``start`` raises. ``select_audit`` (``streamlabel
    review``; the daemon's housekeeping does it otherwise): ``start`` chooses the audit frames once, in a thread
    (store/audit.py: a first selection reads every image), while the page already answers.
    """

    def __init__(
        self,
        cfg: Config,
        store: DatasetStore,
        sink: Any = None,
        address: str | None = None,
        required: bool = True,
        segmenter: Any = None,
        select_audit: bool = True,
    ) -> None:
        self.required = required
        self.audit_thread: threading.Thread | None = None
        self._halt = threading.Event()
        if select_audit and cfg.review.audit_fraction > 0:
            audits = Audits(store.manifest, store.root, cfg.review.audit_fraction, cfg.store.infrared_max_saturation)
            self.audit_thread = threading.Thread(
                target=_select, args=(audits, self._halt), name="review-audit", daemon=True
            )
        where = address or cfg.review.address
        if where is None:
            raise ReviewConfigError("review.address is null (the page is off); set it or pass --address HOST:PORT")
        if cfg.review.needs_token(where):
            raise ReviewConfigError(
                f"review address {where} is not loopback and review.token is unset: anyone on the network could "
                "decide labels. Set review.token: ${REVIEW_TOKEN}, or bind 127.0.0.1"
            )
        host, port = split_address(where)
        self.app = create_app(cfg, store, sink, refiner=refiner_factory(cfg, segmenter))
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="review-server", daemon=True)

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind; start() reports it
            log.debug("review server thread ended: exit %s", exc.code)

    @property
    def bound(self) -> str:
        """``http://HOST:PORT`` actually bound (the port is known once started; port 0 picks a free one)."""
        servers = getattr(self._server, "servers", [])
        if servers and servers[0].sockets:
            host, port = servers[0].sockets[0].getsockname()[:2]
            return f"http://{host}:{port}"
        return "not started"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start serving; when the socket is not bound within ``timeout_s``, raises RuntimeError (``required``)."""
        self._thread.start()
        if self.audit_thread is not None:
            self.audit_thread.start()
        deadline = time.monotonic() + timeout_s
        where = f"{self._server.config.host}:{self._server.config.port}"
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                problem = f"the review page could not listen on {where} (in use? see the log above); set review.address"
                if self.required:
                    raise RuntimeError(problem)
                log.error("%s; labeling goes on without the page", problem)
                return
            time.sleep(0.02)
        log.info("review page on %s", self.bound)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, and the audit selection after its batch (the store may be closed once this returns)."""
        self._halt.set()
        if self.audit_thread is not None and self.audit_thread.is_alive():
            self.audit_thread.join(timeout_s)
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)


def _select(audits: Audits, halt: threading.Event) -> None:
    """The audit selection of ``streamlabel review`` (a thread): every frame not considered yet, a batch at a time
    until ``halt``, then done."""
    start, chosen = time.monotonic(), 0
    try:
        while not halt.is_set():
            chosen += audits.select(audits.batch_frames)
            if not audits.backlog:
                break
    except Exception:
        log.exception("review: the audit selection failed; the audit queue shows what was chosen before")
        return
    log.info("review: audit selection done in %.1f s: %d more audit frame(s)", time.monotonic() - start, chosen)
