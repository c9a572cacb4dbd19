"""torch.compile of SAM2's image encoder (``models.compile``), warmed up before the daemon reports ready.

SAM2's encoder always sees square images of the model's size, so only the batch size varies: ``dynamic=None``
compiles the first batch size statically and recompiles once with a dynamic batch at the second, which the warm-up
does at load time (before systemd's READY, under ``TimeoutStartSec``) rather than inside a labeling batch, where
the watchdog would count it.

Grounding DINO is not compiled: its crops come in every height and width, and a dynamic-shape compile of its Swin
backbone took over ten minutes for the tiny test model on a 2-core CPU (the whole model breaks its graph on
``Tensor.item()`` in the deformable attention). YOLO has its own compiled path (TensorRT, ``detect_engine``), and the
validator runs in a server or generates token by token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

MODES = ("off", "default", "reduce-overhead", "max-autotune")
F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F, mode: str, what: str) -> F:
    """``fn`` compiled with torch.compile in ``mode``, or ``fn`` itself for 'off'.

    ``what`` names the piece in the log. An unknown mode raises ValueError naming the accepted ones.
    """
    if mode not in MODES:
        raise ValueError(f"models.compile: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "off":
        return fn
    import torch

    log.info("torch.compile %s (mode %s): the first calls of each new input shape compile", what, mode)
    return torch.compile(fn, mode=mode, dynamic=None)  # type: ignore[return-value]


def warm_up(what: str, calls: list[Callable[[], Any]]) -> float:
    """Run ``calls`` (each one input shape the compiled piece will meet) and log the seconds they took in all."""
    start = time.perf_counter()
    for call in calls:
        call()
    took_s = time.perf_counter() - start
    log.info("%s compiled and warmed up in %.1f s", what, took_s)
    return took_s
