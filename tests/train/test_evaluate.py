"""Evaluation against a gold set with known answers: a perfect student, one that finds nothing, one that finds a
third, the teacher's precision and recall, and the val split when nobody audited yet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from streamlabel.store.reviews import Decision
from streamlabel.train.evaluate import beats, evaluate
from streamlabel.train.gold import EvalSet, evaluation_set
from streamlabel.train.metrics import ImagePrediction, ImageTruth, mean_average_precision
from tests.fixtures.train_store import audit, write_frame, write_train_store

# COCO's 101-point interpolation: precision 1 up to recall r scores (floor(100 r) + 1) / 101 (a half: 51/101).
THIRD = 34 / 101


def square(x: float, y: float, side: float) -> np.ndarray:
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], float)


@pytest.mark.parametrize(
    ("found", "expected"),
    [("all", 1.0), ("none", 0.0), ("first", 51 / 101), ("shifted", 0.0)],
)
def test_map_known_answers(found: str, expected: float) -> None:
    truth = [ImageTruth(100, 100, [square(10, 10, 20)]), ImageTruth(100, 100, [square(50, 50, 20)])]
    preds = {
        "all": [ImagePrediction([square(10, 10, 20)], [0.9]), ImagePrediction([square(50, 50, 20)], [0.8])],
        "none": [ImagePrediction(), ImagePrediction()],
        "first": [ImagePrediction([square(10, 10, 20)], [0.9]), ImagePrediction()],
        "shifted": [ImagePrediction([square(40, 40, 20)], [0.9]), ImagePrediction()],  # IoU 0 with the truth
    }[found]
    figures = mean_average_precision(truth, preds)
    assert set(figures) == {"box_map50", "box_map50_95", "mask_map50", "mask_map50_95"}
    for value in figures.values():
        assert value == pytest.approx(expected, abs=1e-6)


def test_map_is_undefined_without_truth_and_counts_must_match() -> None:
    assert set(mean_average_precision([ImageTruth(10, 10)], [ImagePrediction()]).values()) == {None}
    with pytest.raises(ValueError, match="1 predictions for 2 images"):
        mean_average_precision([ImageTruth(10, 10), ImageTruth(10, 10)], [ImagePrediction()])


def test_mask_map_sees_what_the_box_does_not() -> None:
    """The true square with a corner cut off (legs of half its side): the same box, a mask IoU of 0.875."""
    truth = [ImageTruth(100, 100, [square(10, 10, 40)])]
    notched = np.array([[10, 10], [50, 10], [50, 30], [30, 50], [10, 50]], float)
    figures = mean_average_precision(truth, [ImagePrediction([notched], [0.9])])
    assert figures["box_map50_95"] == pytest.approx(1.0)
    assert figures["mask_map50"] == pytest.approx(1.0)
    assert figures["mask_map50_95"] == pytest.approx(0.8, abs=1e-6)  # IoU thresholds 0.50 ... 0.85 of ten


def _oracle(eval_set: EvalSet, keep: int | None = None):
    """A predictor that returns the truth of the first ``keep`` frames (all when None), nothing for the rest."""
    truth = {f.image: f.truth for f in eval_set.frames}
    order = [f.image for f in eval_set.frames]

    def predict(paths: Sequence[Path]) -> list[ImagePrediction]:
        out = []
        for p in paths:
            hit = keep is None or order.index(p) < keep
            polys = truth[p] if hit else []
            out.append(ImagePrediction(list(polys), [0.9] * len(polys)))
        return out

    return predict


@pytest.fixture
def gold(tmp_path: Path):
    """Gold set: two parts the pipeline accepted and people too, one it accepted and people rejected, one it
    sent to review and people accepted. Teacher: tp 2, fp 1, fn 1."""
    store = write_train_store(tmp_path / "store", frames_per_stream=2)
    ids = [write_frame(store, "gold", seq, status) for seq, status in enumerate(["accepted"] * 3 + ["review"])]
    audit(store, dict(zip(ids, [Decision.ACCEPT, Decision.ACCEPT, Decision.REJECT, Decision.ACCEPT], strict=True)))
    yield store
    store.close()


def test_gold_set_teacher_and_a_perfect_student(gold) -> None:
    root = gold.root
    eval_set = evaluation_set(gold.manifest, root)
    assert eval_set.kind == "gold"
    assert len(eval_set.frames) == 3 and eval_set.skipped == 1  # the rejected part's frame has no image
    report = evaluate(gold.manifest, root, "perfect", _oracle(eval_set))
    assert report["set"] == "gold" and report["parts"] == 3
    assert report["student"]["mask_map50_95"] == pytest.approx(1.0)
    assert report["student"]["box_map50"] == pytest.approx(1.0)
    teacher = report["teacher"]
    assert (teacher["tp"], teacher["fp"], teacher["fn"], teacher["parts"]) == (2, 1, 1, 4)
    assert teacher["precision"] == pytest.approx(2 / 3) and teacher["recall"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("keep", "expected"), [(0, 0.0), (1, THIRD)])
def test_gold_set_students_that_find_nothing_or_a_third(gold, keep: int, expected: float) -> None:
    eval_set = evaluation_set(gold.manifest, gold.root)
    report = evaluate(gold.manifest, gold.root, "partial", _oracle(eval_set, keep))
    for key in ("box_map50", "box_map50_95", "mask_map50", "mask_map50_95"):
        assert report["student"][key] == pytest.approx(expected, abs=1e-6)


def test_without_gold_it_evaluates_on_val_and_says_so(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store")
    eval_set = evaluation_set(store.manifest, store.root)
    assert eval_set.kind == "val"
    val_ids = {r[0] for r in store.manifest.query("SELECT frame_id FROM frames WHERE subset = 'val'")}
    assert {f.frame_id for f in eval_set.frames} == val_ids and val_ids
    report = evaluate(store.manifest, store.root, "perfect", _oracle(eval_set))
    assert report["set"] == "val" and report["teacher"] is None
    assert "no gold set" in report["note"] and "val split" in report["note"]
    assert report["student"]["mask_map50"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("new", "current", "margin", "wins"),
    [
        (0.5, None, 0.0, True),
        (0.5, 0.4, 0.0, True),
        (0.5, 0.5, 0.0, False),
        (0.5, 0.45, 0.1, False),
        (None, 0.1, 0, False),
    ],
)
def test_beats(new: float | None, current: float | None, margin: float, wins: bool) -> None:
    def report(v: float | None) -> dict:
        return {"student": {"mask_map50_95": v}}

    assert beats(report(new), None if current is None else report(current), "mask_map50_95", margin) is wins
