"""``streamlabel evaluate``: the student's mAP on the gold set (or the val split) beside the teacher's precision."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.store.manifest import Manifest
from streamlabel.train.gold import GOLD, EvalSet, evaluation_set, teacher_scores
from streamlabel.train.metrics import METRIC_NAMES, ImagePrediction, ImageTruth, mean_average_precision
from streamlabel.train.runs import resolve_student

log = logging.getLogger(__name__)

PREDICT_BATCH = 16
MIN_SCORE = 0.001  # keep every candidate: average precision ranks them itself (Ultralytics' val does the same)

# A predictor: image paths -> one ImagePrediction per image (tests pass a function that returns the truth).
Predictor = Callable[[Sequence[Path]], list[ImagePrediction]]


def ultralytics_predictor(weights: Path, imgsz: int | None, device: str) -> Predictor:
    """Predictions of an Ultralytics YOLO-seg model: one polygon (pixels of the original image) and score per part.

    ``imgsz`` None: the size the weights were trained at (Ultralytics keeps it in the checkpoint).
    """
    from ultralytics import YOLO

    model = YOLO(str(weights), task="segment")
    size = {"imgsz": imgsz} if imgsz else {}

    def predict(paths: Sequence[Path]) -> list[ImagePrediction]:
        out: list[ImagePrediction] = []
        for k in range(0, len(paths), PREDICT_BATCH):
            chunk = [str(p) for p in paths[k : k + PREDICT_BATCH]]
            results = model.predict(chunk, **size, device=device, conf=MIN_SCORE, verbose=False, retina_masks=True)
            out += [_prediction(r) for r in results]
        return out

    return predict


def _prediction(result: Any) -> ImagePrediction:
    if result.masks is None or result.boxes is None or len(result.boxes) == 0:
        return ImagePrediction()
    scores = result.boxes.conf.cpu().numpy().tolist()
    return ImagePrediction([np.asarray(p, np.float64) for p in result.masks.xy], scores)


def score(eval_set: EvalSet, predictor: Predictor) -> dict[str, float | None]:
    """The four mAP figures of ``predictor`` on ``eval_set`` (None without any true part)."""
    truth = [ImageTruth(f.height, f.width, list(f.truth)) for f in eval_set.frames]
    preds = predictor([f.image for f in eval_set.frames]) if eval_set.frames else []
    return mean_average_precision(truth, preds)


def evaluate(
    manifest: Manifest,
    store_root: Path,
    student: str,
    predictor: Predictor | None = None,
    *,
    imgsz: int | None = None,
    device: str = "cpu",
    eval_set: EvalSet | None = None,
) -> dict[str, Any]:
    """The report of ``streamlabel evaluate`` (its ``--json``): set, frames, the student's and the teacher's figures.

    ``student`` is a run id or a weights path (``resolve_student``); ``predictor`` replaces the Ultralytics model;
    ``imgsz`` None predicts at the size the student was trained at.
    """
    eval_set = eval_set or evaluation_set(manifest, store_root)
    if predictor is None:
        predictor = ultralytics_predictor(resolve_student(store_root, student), imgsz, device)
    figures = score(eval_set, predictor)
    teacher = teacher_scores(eval_set.parts) if eval_set.kind == GOLD else None
    return {
        "set": eval_set.kind,
        "frames": len(eval_set.frames),
        "parts": sum(len(f.truth) for f in eval_set.frames),
        "skipped": eval_set.skipped,
        "note": _note(eval_set),
        "student": {"model": student, **figures},
        "teacher": teacher,
    }


def _note(eval_set: EvalSet) -> str:
    if eval_set.kind == GOLD:
        return "gold set: audit frames decided by people; truth is what they accepted"
    return (
        "no gold set yet (no audit frame fully decided): evaluated on the val split, whose truth is the labeler's "
        "own accepted labels; the teacher cannot be measured on it. Audit frames on the review page make a gold set"
    )


def beats(new: dict[str, Any], current: dict[str, Any] | None, metric: str, min_improvement: float) -> bool:
    """Whether the ``new`` report's student beats ``current``'s on ``metric`` by more than ``min_improvement``.

    A new student with no figure (no true part in the set) never wins; without a current student (or a figure of
    it) the bar is 0: a first student is promoted when it finds something.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"promote metric {metric!r} is not one of {', '.join(METRIC_NAMES)}")
    ours = new["student"].get(metric)
    if ours is None:
        return False
    theirs = (current or {}).get("student", {}).get(metric)
    return ours > (theirs or 0.0) + min_improvement
