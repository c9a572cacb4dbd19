"""BENCHMARK CODE: scripted detect, ground, segment and validate stages for ``streamlabel bench quality``.

Each stage reads the frame's mark (``bench.quality_scene``), looks up its truth and answers like a real model
that makes mistakes at the seeded rates of ``StageErrors``. Every random draw comes from a generator keyed by the
run's seed, the stage, the frame and (for parts) the box, so the same candidate gets the same answer in every
variant of a run (tracking on or off, verdict reuse on or off) and the variants differ only by what the pipeline
does. They are registered as backends of kind ``bench`` (``register_bench_stages``) and built by
``Stages.build`` like the real ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from streamlabel.bench.quality_scene import FrameTruth, SceneBook, true_checks
from streamlabel.config import TargetConfig
from streamlabel.stages.base import Candidate, Verdict, register_backend
from streamlabel.stages.ground import filter_parts, parts_detections
from streamlabel.stages.polygon import mask_to_polygon

log = logging.getLogger(__name__)

KIND = "bench"
DOG_CLASS, PERSON_CLASS = 16, 0  # COCO class ids
_DETECT, _GROUND, _SEGMENT, _VALIDATE = 1, 2, 3, 4  # salts of the keyed generators


@dataclass(frozen=True)
class StageErrors:
    """Seeded error rates of the scripted stages; each field names its unit.

    The defaults give about 30% bad candidates (see ``streamlabel bench quality``) and a validator that is right
    about 93% of the time.
    """

    dog_miss_rate: float = 0.03  # per dog and frame: the detector misses the dog
    false_dog_rate: float = 0.15  # per frame: the detector takes the cushion for a dog
    box_jitter: float = 0.03  # std of each detector box side, as a share of the box size
    eye_miss_rate: float = 0.03  # per open eye inside an anchor: the grounder misses it
    closed_found_rate: float = 0.7  # per closed eye inside an anchor: the grounder still boxes it
    shifted_rate: float = 0.05  # per eye found: its box lands beside the eye (moved by 0.8 of its side)
    non_eye_rate: float = 0.1  # per anchor: a box on the nose or an ear too (capped by part.max_per_anchor)
    button_rate: float = 0.7  # per anchor on the cushion: a box on the cushion's button
    part_jitter: float = 0.06  # std of each part box side, as a share of the eye's side
    bad_mask_rate: float = 0.10  # per part: the mask is shifted off, bloated x2 or shrunk to 0.4
    false_accept_rate: float = 0.07  # per bad candidate: the validator answers every check true
    false_reject_rate: float = 0.06  # per good candidate: the validator answers one check false
    unsure_rate: float = 0.10  # per right verdict: its confidence is in [0.5, 0.8) instead of [0.8, 1)
    wrong_confidence: tuple[float, float] = (0.5, 1.0)  # confidence range of a wrong verdict


def keyed_rng(*key: float) -> np.random.Generator:
    """A generator fixed by ``key`` (non-negative numbers, rounded to integers)."""
    return np.random.default_rng([max(0, round(float(k))) for k in key])


def _jitter(box: np.ndarray, rng: np.random.Generator, share: float, size: float | None = None) -> np.ndarray:
    """``box`` with Gaussian noise on each side: ``share`` of ``size`` (default: the box's own width)."""
    scale = (box[2] - box[0]) if size is None else size
    return box + rng.normal(0.0, share * scale, 4)


def _clip(box: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(box, 0, [width, height, width, height])


def _inside(box: np.ndarray, anchor: np.ndarray) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(anchor[0] <= cx <= anchor[2] and anchor[1] <= cy <= anchor[3])


class BenchDetector:
    """Dogs (some missed, jittered), the cushion now and then, and with ``people`` the person's box too."""

    model_id = "bench-detect"

    def __init__(self, book: SceneBook, errors: StageErrors, seed: int, people: bool = False) -> None:
        self.book, self.errors, self.seed, self.people = book, errors, seed, people

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        return [self._frame(image) for image in images]

    def _frame(self, image: np.ndarray) -> sv.Detections:
        truth, key = self.book.lookup(image)
        rng, e = keyed_rng(self.seed, _DETECT, *key), self.errors
        h, w = image.shape[:2]
        rows: list[tuple[np.ndarray, float, str]] = []
        for dog in truth.dogs:
            box = _clip(_jitter(dog, rng, e.box_jitter), w, h)
            if rng.random() >= e.dog_miss_rate:
                rows.append((box, rng.uniform(0.6, 0.95), "dog"))
        if rng.random() < e.false_dog_rate:
            rows.append((_clip(_jitter(truth.cushion, rng, e.box_jitter), w, h), rng.uniform(0.45, 0.7), "dog"))
        if self.people and truth.person is not None:
            rows.append((_clip(truth.person, w, h), 0.9, "person"))
        names = np.array([r[2] for r in rows], dtype=str)
        return sv.Detections(
            xyxy=np.array([r[0] for r in rows], dtype=np.float32).reshape(-1, 4),
            confidence=np.array([r[1] for r in rows], dtype=np.float32),
            class_id=np.where(names == "person", PERSON_CLASS, DOG_CLASS).astype(np.int64),
            data={"class_name": names},
        )


class BenchGrounder:
    """Eyes inside each anchor (some missed, some shifted off), closed eyes, noses and ears, the cushion's button.

    An eye whose centre lies inside two anchors is found for both (the duplicate of overlapping dog crops). The
    boxes then go through the real grounder's spatial filter (``filter_parts``: area bounds, NMS, the per-anchor
    cap), as Grounding DINO's would.
    """

    model_id = "bench-ground"

    def __init__(self, book: SceneBook, errors: StageErrors, seed: int, target: TargetConfig) -> None:
        self.book, self.errors, self.seed, self.part = book, errors, seed, target.part

    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]:
        out = []
        for image, frame_anchors in zip(images, anchors, strict=True):
            truth, key = self.book.lookup(image)
            boxes, scores, hint = [], [], []
            for a, anchor in enumerate(np.asarray(frame_anchors.xyxy, dtype=np.float64)):
                rng = keyed_rng(self.seed, _GROUND, *key, *anchor)  # the same answer whatever the anchors' order
                for box, score in self._anchor_parts(truth, anchor, rng):
                    boxes.append(box)
                    scores.append(score)
                    hint.append(a)
            xyxy = np.array(boxes, dtype=np.float64).reshape(-1, 4)
            conf = np.array(scores, dtype=np.float64)
            keep, index = filter_parts(xyxy, conf, frame_anchors.xyxy, self.part, np.array(hint, dtype=np.int64))
            name = self.part.class_name
            out.append(parts_detections(xyxy[keep], conf[keep], index, name, [name] * len(keep)))
        return out

    def _anchor_parts(
        self, truth: FrameTruth, anchor: np.ndarray, rng: np.random.Generator
    ) -> list[tuple[np.ndarray, float]]:
        e, found = self.errors, []
        for eye, is_open in zip(truth.eyes, truth.eye_open, strict=True):
            if not _inside(eye, anchor):
                continue
            side = eye[2] - eye[0]
            box = _jitter(eye, rng, e.part_jitter)
            if rng.random() < e.shifted_rate:
                angle = rng.uniform(0, 2 * np.pi)
                box = box + 0.8 * side * np.array([np.cos(angle), np.sin(angle)] * 2)
            hit = rng.random() >= e.eye_miss_rate if is_open else rng.random() < e.closed_found_rate
            if hit:
                found.append((box, rng.uniform(0.45, 0.85) if is_open else rng.uniform(0.3, 0.6)))
        if _inside(truth.button, anchor) and rng.random() < e.button_rate:
            found.append((_jitter(truth.button, rng, e.part_jitter), rng.uniform(0.35, 0.7)))
        if rng.random() < e.non_eye_rate:
            w, h = anchor[2] - anchor[0], anchor[3] - anchor[1]
            fx, fy = ((0.92, 0.45), (0.5, 0.08))[int(rng.integers(2))]  # nose or ear
            side = 0.12 * w
            cx, cy = anchor[0] + fx * w, anchor[1] + fy * h
            found.append(
                (np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]), rng.uniform(0.3, 0.75))
            )
        return found


def ellipse_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The filled ellipse inscribed in ``box`` on an (H, W) canvas: what a good segmenter gives for an eye."""
    mask = np.zeros(shape, dtype=np.uint8)
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = (round((x1 + x2) / 2 * 4), round((y1 + y2) / 2 * 4))
    axes = (max(1, round((x2 - x1) / 2 * 4)), max(1, round((y2 - y1) / 2 * 4)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Box of a mask's pixels as ``[x_min, y_min, x_max + 1, y_max + 1]``; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


class BenchSegmenter:
    """The ellipse inscribed in each part box; ``bad_mask_rate`` of masks shifted off, bloated or shrunk.

    Like the real segmenter it keeps the incoming rows and data keys (tracker ids included), drops rows whose
    polygon has fewer than 3 points, and fills ``mask``, ``data["polygon"]`` and ``data["mask_score"]``.
    """

    model_id = "bench-segment"

    def __init__(self, book: SceneBook, errors: StageErrors, seed: int, tolerance_px: float) -> None:
        self.book, self.errors, self.seed, self.tolerance_px = book, errors, seed, tolerance_px

    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]:
        return [self._frame(image, p) for image, p in zip(images, parts, strict=True)]

    def _frame(self, image: np.ndarray, parts: sv.Detections) -> sv.Detections:
        _, key = self.book.lookup(image)
        shape = image.shape[:2]
        masks, polygons, scores = [], [], []
        for box in np.asarray(parts.xyxy, dtype=np.float64):
            rng = keyed_rng(self.seed, _SEGMENT, *key, *box)
            mask = ellipse_mask(self._mask_box(box, rng), shape)
            masks.append(mask)
            polygons.append(mask_to_polygon(mask, self.tolerance_px))
            scores.append(rng.uniform(0.7, 0.99))
        keep = np.array([len(p) >= 3 for p in polygons], dtype=bool)
        out = parts[keep]  # a copy: the input rows stay as they were
        out.mask = np.array(masks, dtype=bool).reshape(-1, *shape)[keep]
        kept_polygons = np.empty(int(keep.sum()), dtype=object)
        kept_polygons[:] = [p for p, k in zip(polygons, keep, strict=True) if k]
        out.data["polygon"] = kept_polygons
        out.data["mask_score"] = np.array(scores, dtype=np.float32)[keep]
        return out

    def _mask_box(self, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.errors.bad_mask_rate:
            return box
        centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2
        kind = int(rng.integers(3))
        if kind == 0:  # shifted off the part by 0.9 of its size
            angle = rng.uniform(0, 2 * np.pi)
            centre = centre + 1.8 * half * np.array([np.cos(angle), np.sin(angle)])
        else:  # bloated or shrunk
            half = half * (2.0 if kind == 1 else 0.4)
        return np.concatenate([centre - half, centre + half])


class BenchValidator:
    """Answers the checklist from the truth (``true_checks``), wrong at the seeded rates; counts its calls.

    A wrong verdict on a good candidate fails one random check; on a bad one it passes every check. A right
    verdict's confidence is about uniform in [0.8, 1) (``unsure_rate`` of them in [0.5, 0.8)), a wrong one's in
    ``wrong_confidence``; it is computed from ``check_probs`` as the real backends do (``_probs``). Checks outside
    the default checklist are answered true.
    """

    model_id = "bench-validate"

    def __init__(self, book: SceneBook, errors: StageErrors, seed: int, target: TargetConfig) -> None:
        self.book, self.errors, self.seed = book, errors, seed
        self.checks = [c.name for c in target.validation.checks]
        self.calls = 0  # validate() calls
        self.judged = 0  # candidates judged

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        self.calls += 1
        self.judged += len(items)
        return [self._judge(c) for c in items]

    def _judge(self, c: Candidate) -> Verdict:
        truth, key = self.book.lookup(c.image)
        box = mask_box(c.part.mask[0]) if c.part.mask is not None else None
        box = np.asarray(c.part.xyxy[0], dtype=np.float64) if box is None else box
        rng, e = keyed_rng(self.seed, _VALIDATE, *key, *box), self.errors
        real = true_checks(truth, box, np.asarray(c.anchor_xyxy, dtype=np.float64))
        answers = {name: real.get(name, True) for name in self.checks}
        good = all(answers.values())
        wrong = rng.random() < (e.false_reject_rate if good else e.false_accept_rate)
        if wrong and good:
            answers[self.checks[int(rng.integers(len(self.checks)))]] = False
        elif wrong:
            answers = dict.fromkeys(answers, True)
        if wrong:
            target = rng.uniform(*e.wrong_confidence)
        else:
            target = rng.uniform(0.5, 0.8) if rng.random() < e.unsure_rate else rng.uniform(0.8, 1.0)
        passed = all(answers.values())
        probs = self._probs(answers, target, rng)
        p_all = math.prod(probs.values())
        return Verdict(
            passed,
            round(p_all if passed else 1.0 - p_all, 4),
            answers,
            "scripted" + ("" if passed else f": {', '.join(n for n, ok in answers.items() if not ok)} failed"),
            self.model_id,
            confidence_source="logprobs",
            check_probs=probs,
        )

    @staticmethod
    def _probs(answers: dict[str, bool], target: float, rng: np.random.Generator) -> dict[str, float]:
        """P(check true) per check, such that the verdict's confidence comes out near ``target``.

        The real backends' rule gives the confidence: ``prod P(true)`` for a pass, ``1 - prod P(true)`` for a fail.
        The sure answers get P 0.985-1 (true) or 0-0.015 (false); the weakest answer (a random check of a pass,
        the failed checks of a fail) carries the doubt.
        """
        failed = [n for n, ok in answers.items() if not ok]
        weakest = failed or [list(answers)[int(rng.integers(len(answers)))]]
        sure = {n: float(rng.uniform(0.985, 1.0)) for n in answers if n not in weakest}
        rest = math.prod(sure.values())
        probs = {n: (p if answers[n] else 1.0 - p) for n, p in sure.items()}
        for name in weakest:  # a pass: p * rest = target; a fail: each failed check true with 1 - target
            probs[name] = min(1.0, target / rest) if answers[name] else 1.0 - target
        return {n: round(probs[n], 4) for n in answers}


def register_bench_stages(book: SceneBook, errors: StageErrors, seed: int, people: bool = False) -> None:
    """Register the four scripted stages under kind ``bench`` for the sequences of ``book``.

    The registry is global: a later call replaces these (one benchmark run at a time per process).
    """
    register_backend("detect", KIND, lambda cfg, target, runtime: BenchDetector(book, errors, seed, people))
    register_backend("ground", KIND, lambda cfg, target, runtime: BenchGrounder(book, errors, seed, target))
    register_backend(
        "segment",
        KIND,
        lambda cfg, target, runtime: BenchSegmenter(book, errors, seed, cfg.polygon_tolerance_px),
    )
    register_backend("validate", KIND, lambda cfg, target, runtime: BenchValidator(book, errors, seed, target))
