"""``streamlabel bench student-gate``: what ``models.student.gate`` saves and what it costs in recall.

BENCHMARK CODE around a scripted student. The quality benchmark's scripted scenes and stages (``bench.quality*``:
dogs whose eyes blink, a cushion the detector takes for a dog, people walking through) are labeled twice per seed
and student, gate off and gate on, into temporary stores scored against the truth. The student is scripted too
(``ScriptedStudent``): it finds each open eye unless it misses it (``miss_rate``), a closed eye now and then
(``closed_found_rate``) and the cushion's button now and then (``button_rate``). A frame is gated when it finds
nothing. What a trained student's rates are is measured on the gold set (``streamlabel evaluate``); this benchmark
says what the gate does for a student with given rates.

Figures per student: ``grounded_share`` (frames grounded with the gate / without it: the share of grounding work
left) and ``segmented_share`` (parts segmented), the dataset labels and the correct ones (on an open eye of the
truth) lost to the gate, and precision with and without it (``bench.quality_score``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from streamlabel.bench.quality import STREAM, Variant, open_store, scene_spec, scratch_dir
from streamlabel.bench.quality_scene import QualityScene, SceneBook
from streamlabel.bench.quality_score import score_store
from streamlabel.bench.quality_stages import StageErrors, keyed_rng, register_bench_stages
from streamlabel.config import Config
from streamlabel.frames import POLYGON_KEY
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Runtime
from streamlabel.stages.polygon import mask_to_polygon
from streamlabel.student import Student

DEFAULT_MISS_RATES = (0.02, 0.1, 0.3)
_STUDENT = 5  # salt of the student's keyed generator (the stages use 1-4)


@dataclass(frozen=True)
class StudentRates:
    """How the scripted student errs; each rate is per object and frame."""

    miss_rate: float = 0.1  # per open eye: not found
    closed_found_rate: float = 0.2  # per closed eye: found anyway
    button_rate: float = 0.1  # per frame: the cushion's button found as an eye


class ScriptedStudent:
    """BENCHMARK CODE: answers from the scene's truth at the seeded ``StudentRates`` (boxes on the truth, masks
    filling them as ellipses)."""

    def __init__(self, book: SceneBook, rates: StudentRates, seed: int) -> None:
        self.book, self.rates, self.seed = book, rates, seed

    def find(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        return [self._found(image) for image in images]

    def _found(self, image: np.ndarray) -> sv.Detections:
        truth, (sequence, index) = self.book.lookup(image)
        rng = keyed_rng(self.seed, _STUDENT, sequence, index)
        keep_open = rng.random(len(truth.eyes)) >= self.rates.miss_rate
        keep_closed = rng.random(len(truth.eyes)) < self.rates.closed_found_rate
        boxes = [
            eye
            for eye, o, k, c in zip(truth.eyes, truth.eye_open, keep_open, keep_closed, strict=True)
            if (o and k) or (not o and c)
        ]
        if rng.random() < self.rates.button_rate:
            boxes.append(truth.button)
        return _detections(np.array(boxes, dtype=np.float32).reshape(-1, 4), image.shape[:2])


def _detections(boxes: np.ndarray, shape: tuple[int, ...]) -> sv.Detections:
    masks = np.zeros((len(boxes), *shape[:2]), dtype=np.uint8)
    polygons = np.empty(len(boxes), dtype=object)
    for j, (x1, y1, x2, y2) in enumerate(boxes):
        centre, axes = (round((x1 + x2) / 2), round((y1 + y2) / 2)), (round((x2 - x1) / 2), round((y2 - y1) / 2))
        cv2.ellipse(masks[j], centre, axes, 0, 0, 360, 1, -1)
        polygons[j] = mask_to_polygon(masks[j].astype(bool), 1.0)
    found = sv.Detections(xyxy=boxes, mask=masks.astype(bool), confidence=np.full(len(boxes), 0.9, np.float32))
    found.data[POLYGON_KEY] = polygons
    return found


def run_gate(seed: int, frames: int, rates: StudentRates, gate: bool, closed_rate: float = 0.06) -> dict[str, Any]:
    """Label one sequence with the scripted student, gate on or off; the store's figures and the work done.

    ``closed_rate``: share of frames in which a dog's eyes cannot be seen (the quality benchmark's 0.06 are blinks;
    a dog asleep or facing away gives more)."""
    scene = QualityScene(replace(scene_spec(seed, frames), closed_rate=closed_rate))
    book = SceneBook([scene])
    register_bench_stages(book, StageErrors(), seed, people=True)
    data = Variant("tracking", tracking=True).config(people=True).model_dump(by_alias=True)
    data["models"]["student"] = {"gate": gate}
    cfg = Config.model_validate(data)
    stages = Stages.build(cfg, Runtime())
    stages.student = Student(ScriptedStudent(book, rates, seed), cfg.models.student, "eye", "student:scripted")
    labeler = Labeler(cfg, stages)
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-gate-", dir=scratch_dir()) as tmp:
        store = open_store(Path(tmp), cfg)
        try:
            digest, all_frames, size = cfg.digest(), scene.frames(STREAM), cfg.models.batch_size
            store.manifest.record_run(digest, cfg.model_dump(mode="json", by_alias=True), stages.model_ids())
            for i in range(0, len(all_frames), size):
                for result in labeler.label(all_frames[i : i + size]):
                    store.write(result, digest)
            labeler.end_stream(STREAM)
            scored = score_store(store, scene, cfg.target.validation.review_threshold)
        finally:
            store.close()
    scored["grounded"] = labeler.times.items.get("ground", 0)
    scored["segmented_parts"] = labeler.times.items.get("segment", 0)
    scored["gated"] = stages.student.counts["gated"]
    scored["validated"] = getattr(stages.validator, "judged", 0)
    return scored


def bench_gate(
    seeds: int = 3, frames: int = 120, miss_rates: Sequence[float] = DEFAULT_MISS_RATES, closed_rate: float = 0.06
) -> dict[str, Any]:
    """Gate off against gate on, pooled over ``seeds`` sequences, for a student of each ``miss_rates``."""
    rows = []
    for miss in miss_rates:
        rates = StudentRates(miss_rate=miss)
        off = [run_gate(s, frames, rates, False, closed_rate) for s in range(seeds)]
        on = [run_gate(s, frames, rates, True, closed_rate) for s in range(seeds)]
        rows.append({"student": rates.__dict__, "off": _pooled(off), "on": _pooled(on)})
    for row in rows:
        off, on = row["off"], row["on"]
        row["grounded_share"] = round(on["grounded"] / off["grounded"], 3) if off["grounded"] else None
        row["segmented_share"] = (
            round(on["segmented_parts"] / off["segmented_parts"], 3) if off["segmented_parts"] else None
        )
        row["labels_lost"] = off["labels"] - on["labels"]
        row["correct_lost"] = off["correct"] - on["correct"]
    return {"seeds": seeds, "frames_per_seed": frames, "closed_rate": closed_rate, "rows": rows}


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over seeds: work, gated frames, dataset labels and the correct ones (on an open eye), and precision.

    Recall is read as correct labels kept: the candidate-based recall of the quality benchmark counts the student's
    own review rows as candidates, which differ between students even with the gate off."""
    counts = {k: sum(int(r[k]) for r in runs) for k in ("grounded", "segmented_parts", "gated", "validated")}
    correct = sum(r["counts"]["correct"] for r in runs)
    labels = sum(r["counts"]["labels"] for r in runs)
    return counts | {"labels": labels, "correct": correct, "precision": round(correct / labels, 4) if labels else None}
