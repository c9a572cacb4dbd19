"""``streamlabel selftest``: the whole pipeline on a synthetic clip with tiny random-weight models, offline."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

from rich.console import Console

from streamlabel.config import Config

NOTICE = (
    "selftest uses tiny models with RANDOM weights: it proves that decoding, every stage backend, the store and "
    "the manifest work on this machine. The labels it writes are meaningless."
)


def run_selftest(out: Path | None, console: Console) -> bool:
    """Build tiny models, render a clip, label it through the real backends, check and report the store."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)  # sam2 uses torch.jit.script, deprecated in torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console.print(f"[yellow]{NOTICE}[/]")
    with tempfile.TemporaryDirectory(prefix="streamlabel-selftest-") as tmp:
        root = out or Path(tmp)
        return _selftest(root, console)


def _selftest(root: Path, console: Console) -> bool:
    from streamlabel.pipeline import Stages
    from streamlabel.report import label_with_progress
    from streamlabel.stages.base import Runtime
    from streamlabel.store import DatasetStore
    from streamlabel.store.check import check_store
    from streamlabel.tiny import build_all, tiny_config_dict
    from streamlabel.tiny.scene import SceneSpec, write_clip

    start = time.perf_counter()
    console.print(f"building tiny models in {root / 'models'} …")
    models = build_all(root / "models")
    clip = root / "clips" / "selftest_scene.mp4"
    write_clip(SceneSpec(seconds=2.0), clip)
    console.print(f"rendered {clip} ({time.perf_counter() - start:.1f} s so far)")
    cfg = Config.model_validate(tiny_config_dict(models, root / "store", {"selftest": str(clip)}))
    runtime = Runtime.resolve(cfg.models.device, cfg.models.dtype)
    stages = Stages.build(cfg, runtime)
    store = DatasetStore(Path(cfg.store.path), [cfg.target.part.class_name], keep_rejected=True)
    stats = label_with_progress(cfg, stages, store, console)
    problems = check_store(Path(cfg.store.path))
    for p in problems:
        console.print(f"[red]store problem: {p}[/]")
    ok = stats.frames > 0 and not problems and not any(stats.ended.values())
    verdict = "[green]selftest passed[/]" if ok else "[red]selftest FAILED[/]"
    console.print(
        f"{verdict}: {stats.frames} frames through detect → ground → segment → validate, "
        f"{stats.parts} masks judged, store consistent: {not problems}; "
        f"{time.perf_counter() - start:.1f} s in all. Output: {root}"
    )
    return ok
