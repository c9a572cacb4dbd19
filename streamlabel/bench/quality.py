"""``streamlabel bench quality``: label quality of the real Labeler and DatasetStore on scripted sequences with truth.

Each seed is one synthetic sequence (``bench.quality_scene``: 1-3 dogs with two eyes each, blinks, a cushion the
detector sometimes takes for a dog, a person walking through about every other sequence). Scripted stages
(``bench.quality_stages``, kind ``bench``) stand in for the models and make mistakes at the seeded rates of
``StageErrors``: about 30% of the candidates are bad, and the validator is right about 93% of the time. The frames
go through ``Stages.build``, ``Labeler.label`` in batches of ``models.batch_size`` and ``DatasetStore.write`` into
a temporary store, exactly as the daemon stores them, and the figures are read back from the store
(``bench.quality_score``). Every variant sees the same sequences and the same stage answers:

- ``no tracking``: ``tracking.enabled: false``;
- ``tracking``: tracking on, every candidate validated (``revalidate_s: 0``);
- ``reuse N s``: tracking on, a track's verdict reused for ``reuse_s`` seconds (by default ``revalidate_s``'s
  default, as a user gets it).

The novelty gate (``tracking.novelty``) is on in the tracking variants, as by default; ``Variant(novelty=False)``
turns it off. ``label_scene`` is the runner, shared with the static scene (``bench.quality_static``).

Per variant the figures are the mean, the sample standard deviation, the minimum and the maximum over the seeds,
and ``pooled`` precision and recalls over every sequence's labels together; the goals of issue 12 are a precision
of at least 0.99 and a ``recall_passed`` of at least 0.90.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.bench.quality_scene import QualityScene, QualitySceneSpec, SceneBook
from streamlabel.bench.quality_score import score_store
from streamlabel.bench.quality_stages import KIND, StageErrors, register_bench_stages
from streamlabel.config import Config
from streamlabel.config.target import DEFAULT_CHECKS
from streamlabel.config.tracking import TrackingConfig
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Runtime
from streamlabel.store import DatasetStore

log = logging.getLogger(__name__)

GOAL_PRECISION = 0.99
GOAL_RECALL_PASSED = 0.90
STREAM = "bench"
# Figures summarized over the seeds, in the order the table shows them.
FIGURES = (
    "precision",
    "recall_passed",
    "recall_good",
    "review_share",
    "ignore_per_frame",
    "validator_calls_per_frame",
    "validator_requests_per_frame",
    "bad_share",
    "candidates_per_frame",
    "dataset_frames",
    "person_frames",
    "reused",
)


@dataclass(frozen=True)
class Variant:
    """One pipeline setting compared by the benchmark."""

    name: str
    tracking: bool
    revalidate_s: float = 0.0
    novelty: bool = False
    """``tracking.novelty.enabled`` (the gate only acts on tracked parts)."""

    def config(self, people: bool) -> Config:
        """The config of this variant: every stage of kind ``bench``, the documented defaults otherwise."""
        kinds = {stage: {"kind": KIND} for stage in ("detect", "ground", "segment", "validate")}
        data: dict[str, Any] = {
            "models": {"device": "cpu", **kinds},
            "tracking": {
                "enabled": self.tracking,
                "revalidate_s": self.revalidate_s,
                "novelty": {"enabled": self.novelty},
            },
        }
        if not people:  # the detector answers no check: the validator judges no_human on its own
            checks = [{**c, "detector_class": None} for c in DEFAULT_CHECKS]
            data["target"] = {"validation": {"checks": checks}}
        return Config.model_validate(data)


def default_variants(reuse_s: float | None = None) -> list[Variant]:
    """Tracking off, tracking on without reuse, and tracking on with verdict reuse for ``reuse_s`` seconds (None:
    ``tracking.revalidate_s``'s default, what a user gets)."""
    reuse_s = TrackingConfig().revalidate_s if reuse_s is None else reuse_s
    return [
        Variant("no tracking", tracking=False),
        Variant("tracking", tracking=True),
        Variant(f"reuse {reuse_s:g} s", tracking=True, revalidate_s=reuse_s),
        Variant("novelty gate", tracking=True, novelty=True),
    ]


def scene_spec(seed: int, frames: int) -> QualitySceneSpec:
    """The sequence of ``seed``: 1, 2 or 3 dogs in turn, ``frames`` frames at 2 fps."""
    return QualitySceneSpec(frames=frames, dogs=1 + seed % 3, seed=seed)


def scratch_dir() -> str | None:
    """A memory-backed folder for the temporary stores when there is one (``/dev/shm``): the benchmark measures
    labels, not the disk, and every store write fsyncs; None (the system's temp folder) otherwise."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def open_store(root: Path, cfg: Config) -> DatasetStore:
    """A store at ``root`` with the settings of ``cfg.store`` that the store takes (as the daemon opens it)."""
    return DatasetStore.from_config(cfg, root)


def run_sequence(variant: Variant, spec: QualitySceneSpec, errors: StageErrors, people: bool = True) -> dict[str, Any]:
    """Label one sequence with one variant into a temporary store and score it; returns its figures."""
    scene = QualityScene(spec)

    def figures_of(scene: Any, store: DatasetStore, validator_calls: int, scored: dict[str, Any]) -> dict[str, Any]:
        n = len(scene.truth)
        scored["frames"] = n
        scored["candidates_per_frame"] = round(scored["candidates"] / n, 3)
        scored["validator_calls"] = validator_calls
        scored["validator_calls_per_frame"] = round(validator_calls / n, 3)
        return scored

    return label_scene(variant, scene, spec.seed, figures_of, errors, people)


Figures = Callable[[Any, DatasetStore, int, dict[str, Any]], dict[str, Any]]
"""(scene, its store, validator calls, ``score_store``'s figures) -> the figures a benchmark reports."""


def label_scene(
    variant: Variant,
    scene: QualityScene,
    seed: int,
    figures_of: Figures,
    errors: StageErrors | None = None,
    people: bool = True,
) -> dict[str, Any]:
    """Label ``scene`` with ``variant`` (stages seeded with ``seed``) into a temporary store, as the daemon does,
    and return ``figures_of`` it, with ``ms_per_frame`` and the Labeler's ``sift`` counts."""
    register_bench_stages(SceneBook([scene]), errors or StageErrors(), seed, people=people)
    cfg = variant.config(people)
    stages = Stages.build(cfg, Runtime())
    labeler = Labeler(cfg, stages)
    frames = scene.frames(STREAM)
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-quality-", dir=scratch_dir()) as tmp:
        store = open_store(Path(tmp), cfg)
        try:
            config_hash = cfg.digest()
            store.manifest.record_run(config_hash, cfg.model_dump(mode="json", by_alias=True), stages.model_ids())
            start = time.perf_counter()
            size = cfg.models.batch_size
            for i in range(0, len(frames), size):
                for result in labeler.label(frames[i : i + size]):
                    store.write(result, config_hash)
            labeler.end_stream(STREAM)
            elapsed_s = time.perf_counter() - start
            scored = score_store(store, scene, cfg.target.validation.review_threshold)
            calls = stages.validator.judged if stages.validator is not None else 0
            figures = figures_of(scene, store, calls, scored)
        finally:
            store.close()
    requests = stages.validator.calls if stages.validator is not None else 0  # validate() calls: a batch's runs
    figures["validator_requests_per_frame"] = round(requests / len(frames), 3)
    figures["ms_per_frame"] = round(1000 * elapsed_s / len(frames), 2)
    figures["sift"] = labeler.sift_counts().get(STREAM, {})
    return figures


def summarize(values: list[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of the values that are not None (all None when there are none)."""
    kept = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(kept) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = float(kept.std(ddof=1)) if len(kept) > 1 else 0.0
    return {
        "mean": round(float(kept.mean()), 4),
        "std": round(std, 4),
        "min": round(float(kept.min()), 4),
        "max": round(float(kept.max()), 4),
        "n": len(kept),
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Precision and recalls over the labels and candidates of every sequence together (each label weighs the
    same, where the mean over sequences weighs each sequence the same)."""
    total: dict[str, int] = {}
    for run in runs:
        for name, value in run["counts"].items():
            total[name] = total.get(name, 0) + value

    def ratio(part: str, whole: str) -> float | None:
        return round(total[part] / total[whole], 4) if total.get(whole) else None

    return {
        "precision": ratio("correct", "labels"),
        "recall_good": ratio("good_reached", "good"),
        "recall_passed": ratio("passed_reached", "passed"),
    }


def variant_summary(variant: Variant, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant's setting, its figures summarized over the sequences (and pooled), and every sequence's figures."""
    figures = {name: summarize([r[name] for r in runs]) for name in (*FIGURES, "ms_per_frame")}
    figures["pooled"] = pooled(runs)
    return {
        "name": variant.name,
        "tracking": variant.tracking,
        "revalidate_s": variant.revalidate_s,
        "figures": figures,
        "runs": runs,
    }


def bench_quality(
    seeds: int = 3,
    frames: int = 60,
    *,
    errors: StageErrors | None = None,
    variants: list[Variant] | None = None,
    people: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every variant over the sequences of seeds ``0..seeds-1`` and return the figures (see the module doc).

    ``people``: the scripted detector also returns the person's box (the checklist's ``detector_class``); off, the
    ``no_human`` check is left to the validator alone.
    """
    if seeds < 1 or frames < 1:
        raise ValueError(f"seeds and frames must be at least 1 (got seeds={seeds}, frames={frames})")
    errors = errors or StageErrors()
    variants = variants or default_variants()
    out: dict[str, Any] = {
        "seeds": seeds,
        "frames": frames,
        "fps": scene_spec(0, frames).fps,
        "errors": asdict(errors),
        "goals": {"precision": GOAL_PRECISION, "recall_passed": GOAL_RECALL_PASSED},
        "variants": [],
    }
    start = time.perf_counter()
    for variant in variants:
        runs = []
        for seed in range(seeds):
            if progress is not None:
                progress(f"{variant.name}: seed {seed + 1}/{seeds}")
            runs.append(run_sequence(variant, scene_spec(seed, frames), errors, people))
        out["variants"].append(variant_summary(variant, runs))
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out
