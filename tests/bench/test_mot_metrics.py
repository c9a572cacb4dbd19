"""MOT scores (bench.mot_metrics): hand-made cases with known answers, and agreement with motmetrics."""

from __future__ import annotations

import numpy as np
import pytest

from streamlabel.bench.mot import read_mot
from streamlabel.bench.mot_metrics import MotCounts, evaluate

A = [0.0, 0.0, 10.0, 20.0]
B = [50.0, 0.0, 60.0, 20.0]
FAR = [200.0, 200.0, 210.0, 220.0]
A_SHIFTED = [3.0, 0.0, 13.0, 20.0]  # IoU with A: 7 / 13 = 0.54


def _frame(ids: list[int], boxes: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ids, dtype=int), np.array(boxes, dtype=np.float64).reshape(-1, 4)


@pytest.mark.parametrize(
    ("truth", "tracked", "expected", "mota", "idf1"),
    [
        pytest.param([], [], MotCounts(), 1.0, 1.0, id="empty"),
        pytest.param(
            [_frame([1, 2], [A, B])] * 3,
            [_frame([7, 8], [A, B])] * 3,
            MotCounts(true_boxes=6, tracker_boxes=6, idtp=6),
            1.0,
            1.0,
            id="perfect",
        ),
        pytest.param(
            [_frame([1], [A])] * 4,
            [_frame([10], [A])] * 2 + [_frame([11], [A])] * 2,
            MotCounts(true_boxes=4, tracker_boxes=4, id_switches=1, idtp=2),
            0.75,
            0.5,
            id="one-id-switch",
        ),
        pytest.param(
            [_frame([1, 2], [A, B])] * 2,
            [_frame([10, 20], [A, B]), _frame([20, 10], [A, B])],
            MotCounts(true_boxes=4, tracker_boxes=4, id_switches=2, idtp=2),
            0.5,
            0.5,
            id="two-ids-swap",
        ),
        pytest.param(
            [_frame([1], [A])],
            [_frame([10], [FAR])],
            MotCounts(true_boxes=1, tracker_boxes=1, misses=1, false_positives=1),
            -1.0,
            0.0,
            id="miss-and-false-positive",
        ),
        pytest.param(
            [_frame([1], [A]), _frame([1], [A])],
            [_frame([10], [A]), _frame([10, 11], [A_SHIFTED, A])],
            MotCounts(true_boxes=2, tracker_boxes=3, false_positives=1, idtp=2),
            0.5,
            0.8,
            id="kept-correspondence-beats-a-better-box",
        ),
        pytest.param(
            [_frame([1], [A]), _frame([], []), _frame([1], [A])],
            [_frame([10], [A]), _frame([10], [B]), _frame([12], [A])],
            MotCounts(true_boxes=2, tracker_boxes=3, false_positives=1, id_switches=1, idtp=1),
            0.0,
            0.4,
            id="switch-after-a-gap",
        ),
    ],
)
def test_known_answers(truth, tracked, expected: MotCounts, mota: float, idf1: float) -> None:
    counts = evaluate(truth, tracked)
    assert counts == expected
    assert counts.mota == pytest.approx(mota)
    assert counts.idf1 == pytest.approx(idf1)


def test_counts_of_sequences_add_up() -> None:
    one = evaluate([_frame([1], [A])] * 4, [_frame([10], [A])] * 2 + [_frame([11], [A])] * 2)
    both = one + evaluate([_frame([1], [A])], [_frame([10], [FAR])])
    assert both == MotCounts(true_boxes=5, tracker_boxes=5, misses=1, false_positives=1, id_switches=1, idtp=2)
    assert both.mota == pytest.approx(1 - 3 / 5)


def test_frame_counts_must_agree() -> None:
    with pytest.raises(ValueError, match="truth has 2 frames, the tracker output 1"):
        evaluate([_frame([1], [A])] * 2, [_frame([1], [A])])


def test_agrees_with_motmetrics_on_a_real_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """TUD-Campus as shipped by motmetrics: its ground truth and the tracker output it ships next to it."""
    mm = pytest.importorskip("motmetrics")
    # motmetrics 1.4.0 still calls np.asfarray, which numpy 2 removed.
    monkeypatch.setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False)
    from pathlib import Path

    data = Path(mm.__file__).parent / "data" / "TUD-Campus"
    truth, tracked = read_mot(data / "gt.txt", 25.0), read_mot(data / "test.txt", 25.0)
    frames = max(len(truth.frames), len(tracked.frames))
    empty = _frame([], [])
    pad = lambda seq: [(f.ids, f.xyxy) for f in seq.frames] + [empty] * (frames - len(seq.frames))  # noqa: E731
    ours = evaluate(pad(truth), pad(tracked))

    gt = mm.io.loadtxt(str(data / "gt.txt"), fmt="mot15-2D", min_confidence=1)
    ts = mm.io.loadtxt(str(data / "test.txt"), fmt="mot15-2D")
    acc = mm.utils.compare_to_groundtruth(gt, ts, "iou", distth=0.5)
    theirs = mm.metrics.create().compute(acc, metrics=["mota", "num_switches", "idf1", "num_misses"], name="tud")
    assert ours.id_switches == int(theirs["num_switches"].iloc[0])
    assert ours.misses == int(theirs["num_misses"].iloc[0])
    assert ours.mota == pytest.approx(float(theirs["mota"].iloc[0]), abs=1e-9)
    assert ours.idf1 == pytest.approx(float(theirs["idf1"].iloc[0]), abs=1e-9)
