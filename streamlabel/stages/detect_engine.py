"""TensorRT engines for the detector: export a YOLO ``.pt`` once, cache the engine beside it, reuse it.

An engine only runs on the TensorRT version and the kind of GPU it was built with, at the input sizes and batch sizes
its optimization profile allows, and in the precision it was built in. All of that is in the cached file's name
(``yolo11m-640px-fp16-b16-trt10.9.0-nvidia-h100-80gb-hbm3.engine``), so a changed setting or an upgraded TensorRT
builds a new engine and an unchanged one is reused; a ``.pt`` newer than its engine is exported again.

Exports run in a hidden folder beside the weights and the finished engine is renamed into place, so a crash
mid-export never leaves a half-written engine under the name that is loaded. Any failure logs one warning and the
caller runs the ``.pt``: a missing speed-up never stops the daemon.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamlabel.config import DetectModelConfig
from streamlabel.stages.base import Runtime

log = logging.getLogger(__name__)

# Largest batch the engine's optimization profile accepts (also the batch TensorRT tunes its kernels for). The
# labeler sends up to models.batch_size frames (8 by default), `bench stages` up to 16; one fixed maximum means one
# engine per machine whatever the batch setting, and the detector splits larger batches into pieces of this size.
DEFAULT_MAX_BATCH = 16
# Hidden export folders older than this are leftovers of a crash mid-export (a running export finishes in minutes).
_STALE_BUILD_S = 24 * 3600
_FIX = "set models.detect.tensorrt: off to run the .pt without trying"


@dataclass(frozen=True)
class EngineSpec:
    """What an engine depends on (all but ``device_index`` are in its file name)."""

    imgsz: int
    half: bool
    max_batch: int
    tensorrt_version: str
    gpu_name: str = ""
    device_index: int = 0

    def file_name(self, weights_stem: str) -> str:
        """``<stem>-<imgsz>px-<fp16|fp32>-b<max_batch>-trt<version>[-<gpu>].engine``."""
        parts = [
            weights_stem,
            f"{self.imgsz}px",
            "fp16" if self.half else "fp32",
            f"b{self.max_batch}",
            f"trt{_slug(self.tensorrt_version)}",
        ]
        if self.gpu_name:
            parts.append(_slug(self.gpu_name))
        return "-".join(parts) + ".engine"


# (staged .pt, spec) -> path of the engine it wrote, on the filesystem of the .pt (it is renamed into place).
Exporter = Callable[[Path, EngineSpec], Path]


def engine_wanted(cfg: DetectModelConfig, runtime: Runtime) -> bool:
    """True when ``tensorrt: auto``, the runtime is CUDA, the weights are a ``.pt`` and ``tensorrt`` is installed."""
    return (
        cfg.tensorrt == "auto"
        and runtime.cuda
        and is_pt(cfg.weights)
        and importlib.util.find_spec("tensorrt") is not None
    )


def is_pt(weights: str) -> bool:
    """A local or release ``.pt`` (the only weights exported to an engine)."""
    return str(weights).lower().endswith(".pt")


def spec_for(cfg: DetectModelConfig, runtime: Runtime, max_batch: int = DEFAULT_MAX_BATCH) -> EngineSpec:
    """The engine this config and CUDA runtime ask for; imports tensorrt and torch (call only when wanted)."""
    import tensorrt
    import torch

    index = int(runtime.device.partition(":")[2] or torch.cuda.current_device())
    return EngineSpec(
        imgsz=cfg.imgsz,
        half=cfg.half,
        max_batch=max_batch,
        tensorrt_version=str(tensorrt.__version__),
        gpu_name=torch.cuda.get_device_name(index),
        device_index=index,
    )


def ultralytics_export(pt: Path, spec: EngineSpec) -> Path:
    """Export ``pt`` with Ultralytics (``format=engine``, dynamic batch and size); the engine lands beside ``pt``.

    The ONNX graph is not simplified: that would need onnxslim and onnxruntime-gpu, and TensorRT fuses the graph
    itself. An FP16 build with TensorRT 11 or later also needs NVIDIA ModelOpt (``nvidia-modelopt[onnx]``).
    """
    from ultralytics import YOLO

    missing = [name for name in ("onnx",) if importlib.util.find_spec(name) is None]
    if spec.half and int(spec.tensorrt_version.split(".")[0]) >= 11 and importlib.util.find_spec("modelopt") is None:
        missing.append("nvidia-modelopt[onnx]")
    if missing:  # checked here, else Ultralytics would pip-install them into the daemon's environment
        raise ModuleNotFoundError(f"the export needs the Python packages {', '.join(missing)}; pip install them")
    precision = {"quantize": 16} if spec.half else {}
    out = YOLO(str(pt), task="detect").export(
        format="engine",
        imgsz=spec.imgsz,
        dynamic=True,
        batch=spec.max_batch,
        device=spec.device_index,
        simplify=False,
        verbose=False,
        **precision,
    )
    return Path(out)


def cached_engine(pt: Path, spec: EngineSpec, exporter: Exporter = ultralytics_export) -> Path | None:
    """The engine for ``pt`` under ``spec``: reused when newer than ``pt``, else exported now.

    None (after one WARNING naming the weights, the cause and the fix) when the export fails: run ``pt`` instead.
    """
    pt = pt.resolve()
    engine = pt.with_name(spec.file_name(pt.stem))
    if engine.is_file() and engine.stat().st_mtime >= pt.stat().st_mtime:
        log.info("detect: reusing TensorRT engine %s (built from %s)", engine, pt.name)
        return engine
    why = "is older than the weights" if engine.is_file() else "is not built yet"
    log.info("detect: exporting %s to TensorRT engine %s (it %s; this takes minutes)", pt.name, engine.name, why)
    started_s = time.monotonic()
    try:
        _build(pt, engine, spec, exporter)
    except Exception as exc:  # any export failure falls back to the .pt; the daemon keeps going
        log.warning(
            "models.detect.tensorrt: could not export %s to a TensorRT engine (%s); running the .pt instead. "
            "Fix the cause, or %s.",
            pt,
            _cause(exc, pt.parent),
            _FIX,
        )
        return None
    log.info("detect: built TensorRT engine %s in %.1f s", engine, time.monotonic() - started_s)
    return engine


def engine_load_failed(engine: Path | None, pt: Path, exc: BaseException) -> None:
    """Log the one WARNING for TensorRT that would not import (``engine`` None) or an engine that would not load."""
    what = f"load TensorRT engine {engine}" if engine else "import tensorrt"
    fix = "Delete the engine to rebuild it" if engine else "Repair the TensorRT install"
    log.warning(
        "models.detect.tensorrt: could not %s (%s); running %s instead. %s, or %s.",
        what,
        _cause(exc, (engine or pt).parent),
        pt,
        fix,
        _FIX,
    )


def _build(pt: Path, engine: Path, spec: EngineSpec, exporter: Exporter) -> None:
    """Export a hard link (or copy) of ``pt`` inside a hidden folder beside it, then rename the engine into place."""
    _remove_stale_builds(pt.parent, engine.name)
    work = Path(tempfile.mkdtemp(prefix=f".{engine.name}.", suffix=".building", dir=pt.parent))
    try:
        staged = work / pt.name
        try:
            os.link(pt, staged)
        except OSError:  # another filesystem feature set (no hard links): copy instead
            shutil.copy2(pt, staged)
        built = Path(exporter(staged, spec))
        if not built.is_file():
            raise FileNotFoundError(f"the exporter returned {built}, which is not a file")
        os.replace(built, engine)  # same folder, so the rename is atomic
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_stale_builds(folder: Path, engine_name: str) -> None:
    now_s = time.time()
    for leftover in folder.glob(f".{engine_name}.*.building"):
        try:
            if now_s - leftover.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _cause(exc: BaseException, folder: Path) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip()}"[:300]
    if isinstance(exc, OSError) and not os.access(folder, os.W_OK):
        return f"the folder {folder} beside the weights is not writable; {text}"
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
