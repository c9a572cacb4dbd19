"""BENCHMARK CODE: the mostly-static scene of ``streamlabel bench quality --static`` (issue 14, point 5).

One dog rests, perfectly still, for minutes at a time with its eyes open; now and then it gets up and moves for a
few seconds (a *burst*) and rests again somewhere else. The first half of the sequence is day (colour), the second
night (the frames rendered as grayscale, as an infrared camera films them). The bursts are the ground truth's
*distinct moments*: a moment is kept when a frame captured during it (or within ``MOMENT_GRACE_S`` after it) is in
the store, in any copy (dataset, review, pending, rejected). The cushion, the scripted stages and their error
rates are the ones of the busy scene (``bench.quality_scene``, ``bench.quality_stages``).

``bench_static`` labels the same sequences with the novelty gate off and on (the real Labeler and DatasetStore,
tracking on) and reports validator calls, frames stored (by day and by night), distinct moments kept and the
precision of the dataset. The goal: at least 90% fewer stored frames and validator calls with the gate on, at
least 98% of the moments kept. With ``daily_budget``, a third run adds ``store.daily_budget`` to the gate; its
sequences' capture times are spread evenly over one UTC day (``StaticSceneSpec.spread_over_day``; the stream
times the gate and the tracker see stay at 2 fps), so that each sequence is one budget day, and the report says
what the day and night pools kept and whether both are represented.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import cv2
import numpy as np

from streamlabel.bench.quality import Variant, label_scene  # the busy benchmark's runner
from streamlabel.bench.quality_scene import T0, FrameTruth, QualityScene, QualitySceneSpec, _Dog, _eye_boxes, mark
from streamlabel.config import Config
from streamlabel.frames import Frame
from streamlabel.store.budget import DAY_S

log = logging.getLogger(__name__)

MOMENT_GRACE_S = 1.0  # a frame stored this long after a burst ended still shows that moment
GOAL_FEWER = 0.90  # at least this share fewer stored frames and validator calls with the gate on
GOAL_MOMENTS = 0.98  # at least this share of the distinct moments kept with the gate on


@dataclass(frozen=True)
class StaticSceneSpec:
    """A mostly-static sequence: its length, its bursts of activity, the seed."""

    minutes: float = 10.0
    fps: float = 2.0
    bursts: int = 6  # bursts of activity, spread over the sequence
    burst_s: tuple[float, float] = (3.0, 8.0)  # how long a burst lasts
    speed_px_s: tuple[float, float] = (20.0, 40.0)  # how fast the dog moves during a burst
    seed: int = 0
    spread_over_day: bool = False  # capture times spread over one UTC day (stream times stay at ``fps``)

    @property
    def frames(self) -> int:
        return round(self.minutes * 60 * self.fps)


class StaticScene(QualityScene):
    """A ``QualityScene`` whose one dog rests between ``spec.bursts`` bursts of activity; night in the second half.

    ``moments`` holds the bursts as ``(first frame, last frame)`` (inclusive).
    """

    def __init__(self, spec: StaticSceneSpec, sequence: int = 0) -> None:
        self.static = spec
        self.moments: list[tuple[int, int]] = []
        base = QualitySceneSpec(frames=spec.frames, fps=spec.fps, dogs=1, closed_rate=0.0, person_chance=0.0)
        super().__init__(base, sequence)

    def _simulate(self, rng: np.random.Generator) -> list[FrameTruth]:
        spec, static = self.spec, self.static
        self.moments = self._bursts(np.random.default_rng([static.seed, 1]))
        rng = np.random.default_rng([static.seed, 2])
        low, high = self._band(0)
        dog = _Dog(float(rng.uniform(*spec.dog_width_px)), rng.uniform(low, high), low=low, high=high)
        cushion_w = 70.0
        cushion = np.array([10.0, spec.height - 52.0, 10.0 + cushion_w, spec.height - 10.0])
        centre = (cushion[:2] + cushion[2:]) / 2
        button = np.concatenate([centre - 5.5, centre + 5.5])
        moving = np.zeros(spec.frames, dtype=bool)
        for first, last in self.moments:
            moving[first : last + 1] = True
        out = []
        for i in range(spec.frames):
            if moving[i] and (i == 0 or not moving[i - 1] or rng.random() < 0.5 / spec.fps):
                angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(*static.speed_px_s)
                dog.velocity = speed * np.array([np.cos(angle), np.sin(angle)])
            if not moving[i]:
                dog.velocity = np.zeros(2)
            self._move_only(dog)
            box = dog.box().reshape(1, 4)
            out.append(FrameTruth(i, box, _eye_boxes(box[0]), np.ones(2, dtype=bool), cushion, button, None))
        return out

    def _move_only(self, dog: _Dog) -> None:
        """Move by the current velocity and bounce off the band's edges (no random change of velocity)."""
        dog.centre = dog.centre + dog.velocity / self.spec.fps
        bounced = (dog.centre < dog.low) | (dog.centre > dog.high)
        dog.velocity = np.where(bounced, -dog.velocity, dog.velocity)
        dog.centre = np.clip(dog.centre, dog.low, dog.high)

    def _bursts(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        """``bursts`` bursts, one in each equal slice of the sequence, at a random place inside it."""
        static, n = self.static, self.static.frames
        slice_n = n / max(static.bursts, 1)
        out = []
        for k in range(static.bursts):
            length = max(1, round(rng.uniform(*static.burst_s) * static.fps))
            start = int(k * slice_n + rng.uniform(0.1, 0.9) * max(slice_n - length, 1))
            out.append((start, min(start + length - 1, n - 1)))
        return out

    def frames(self, stream: str) -> list[Frame]:
        """The sequence's frames; with ``spread_over_day`` their capture times (``Frame.time``, what the daily budget
        reads) cover one UTC day evenly while their stream times (``pts``) stay ``1 / fps`` apart."""
        frames = super().frames(stream)
        if not self.static.spread_over_day:
            return frames
        step_s = DAY_S / len(frames)
        return [replace(f, time=T0 + timedelta(seconds=f.seq * step_s)) for f in frames]

    def night(self, i: int) -> bool:
        """Whether frame ``i`` is night footage (the second half)."""
        return i >= self.spec.frames // 2

    def render(self, i: int) -> np.ndarray:
        image = super().render(i)
        if self.night(i):
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            image = np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
            mark(image, self.sequence, i)
        return image


def moments_kept(scene: StaticScene, stored_seqs: set[int]) -> int:
    """How many of the scene's bursts have a stored frame during them or within ``MOMENT_GRACE_S`` after."""
    grace = round(MOMENT_GRACE_S * scene.spec.fps)
    return sum(any(seq in stored_seqs for seq in range(first, last + grace + 1)) for first, last in scene.moments)


@dataclass(frozen=True)
class BudgetVariant(Variant):
    """A ``Variant`` with ``store.daily_budget`` (frames per stream and UTC day) and ``store.night_share``."""

    daily_budget: int | None = None
    night_share: float = 0.3

    def config(self, people: bool) -> Config:
        cfg = super().config(people)
        store = cfg.store.model_copy(update={"daily_budget": self.daily_budget, "night_share": self.night_share})
        return cfg.model_copy(update={"store": store})


def static_figures(scene: StaticScene, store: Any, validator_calls: int, scored: dict[str, Any]) -> dict[str, Any]:
    """The static scene's figures of one labeled sequence, read back from its store."""
    seqs = {int(r["seq"]) for r in store.manifest.query("SELECT seq FROM frames")}
    kept = moments_kept(scene, seqs)
    night = {seq for seq in seqs if scene.night(seq)}
    return {
        "frames": scene.spec.frames,
        "validator_calls": validator_calls,
        "stored_frames": len(seqs),
        "stored_day": len(seqs - night),
        "stored_night": len(night),
        "moments_day": sum(not scene.night(first) for first, _ in scene.moments),
        "moments_kept_day": moments_kept(scene, seqs - night),
        "moments_kept_night": moments_kept(scene, night),
        "dataset_frames": scored["dataset_frames"],
        "moments": len(scene.moments),
        "moments_kept": kept,
        "precision": scored["precision"],
        "counts": scored["counts"],
    }


def _total(runs: list[dict[str, Any]], name: str) -> int:
    return sum(int(r[name]) for r in runs)


def _precision(runs: list[dict[str, Any]]) -> float | None:
    labels = sum(r["counts"]["labels"] for r in runs)
    return round(sum(r["counts"]["correct"] for r in runs) / labels, 4) if labels else None


TOTALS = (
    "frames",
    "validator_calls",
    "stored_frames",
    "stored_day",
    "stored_night",
    "dataset_frames",
    "moments",
    "moments_kept",
)


def totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums of ``TOTALS`` over the sequences, and the pooled precision of their datasets."""
    return {n: _total(runs, n) for n in TOTALS} | {"precision": _precision(runs)}


def compare(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the sequences with the gate off and on, the reductions, and whether the goals are met."""
    out: dict[str, Any] = {"gate_off": totals(off), "gate_on": totals(on)}
    a, b = out["gate_off"], out["gate_on"]
    out["fewer_stored"] = round(1 - b["stored_frames"] / max(a["stored_frames"], 1), 4)
    out["fewer_validator_calls"] = round(1 - b["validator_calls"] / max(a["validator_calls"], 1), 4)
    out["moments_kept_share"] = round(b["moments_kept"] / max(b["moments"], 1), 4)
    out["goals_met"] = (
        out["fewer_stored"] >= GOAL_FEWER
        and out["fewer_validator_calls"] >= GOAL_FEWER
        and out["moments_kept_share"] >= GOAL_MOMENTS
    )
    return out


def budget_summary(runs: list[dict[str, Any]], daily_budget: int, night_share: float) -> dict[str, Any]:
    """What the gate and ``daily_budget`` kept, by day and by night, over sequences that are one budget day each."""
    out = {"daily_budget": daily_budget, "night_share": night_share} | totals(runs)
    out["moments_day"] = _total(runs, "moments_day")
    out["moments_kept_day"] = _total(runs, "moments_kept_day")
    out["moments_kept_night"] = _total(runs, "moments_kept_night")
    out["refused"] = sum(int(r["sift"].get("budget_refused", 0)) for r in runs)
    out["within_budget"] = all(r["stored_frames"] <= daily_budget for r in runs)
    out["both_represented"] = all(r["stored_day"] > 0 and r["stored_night"] > 0 for r in runs)
    return out


def bench_static(
    seeds: int = 3,
    minutes: float = 10.0,
    *,
    daily_budget: int | None = None,
    night_share: float = 0.3,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Label the static sequences of seeds ``0..seeds-1`` with the gate off and on (and, with ``daily_budget``, the
    gate and the budget); the figures of ``compare`` (and ``budget_summary`` as ``budget``) plus each sequence's
    own (see the module doc)."""
    if seeds < 1 or minutes <= 0:
        raise ValueError(f"seeds must be at least 1 and minutes above 0 (got seeds={seeds}, minutes={minutes})")
    settings = [("gate_off", False, None), ("gate_on", True, None)]
    if daily_budget is not None:
        settings.append(("gate_budget", True, daily_budget))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in settings}
    for name, novelty, budget in settings:
        for seed in range(seeds):
            if progress is not None:
                progress(f"static scene, {name}: seed {seed + 1}/{seeds}")
            scene = StaticScene(StaticSceneSpec(minutes=minutes, seed=seed, spread_over_day=budget is not None))
            variant = BudgetVariant(name, tracking=True, novelty=novelty, daily_budget=budget, night_share=night_share)
            runs[name].append(label_scene(variant, scene, seed, static_figures))
    out = {"seeds": seeds, "minutes": minutes} | compare(runs["gate_off"], runs["gate_on"])
    if daily_budget is not None:
        out["budget"] = budget_summary(runs["gate_budget"], daily_budget, night_share)
    out["runs"] = runs
    return out
