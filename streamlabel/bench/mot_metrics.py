"""CLEAR-MOT (MOTA, ID switches) and identity (IDF1) scores of a tracker's boxes against MOT ground truth.

Written here (scipy's Hungarian solver) rather than taken from ``motmetrics`` so the benchmark and its tests need
no optional package; ``tests/bench/test_mot_metrics.py`` checks the figures against ``motmetrics`` when it is
installed. The definitions are the usual ones (Bernardin & Stiefelhagen 2008; Ristani et al. 2016):

- a true box and a tracker box may match when their IoU is at least ``iou_threshold`` (0.5);
- per frame, a true object keeps the tracker id it was matched to before when that pair still may match; the
  others are matched by the Hungarian method on IoU. A match to another id than the object's previous one is an
  ID switch. MOTA = 1 - (misses + false positives + ID switches) / true boxes;
- IDF1: each true id is paired with at most one tracker id over the whole sequence (Hungarian method on the
  number of frames the two may match); IDF1 = 2 IDTP / (true boxes + tracker boxes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from streamlabel.tracking.association import iou_matrix

log = logging.getLogger(__name__)

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class MotCounts:
    """The counts behind the scores; counts of several sequences add up (``+``) as MOTChallenge sums them."""

    true_boxes: int = 0
    tracker_boxes: int = 0
    misses: int = 0
    false_positives: int = 0
    id_switches: int = 0
    idtp: int = 0

    def __add__(self, other: MotCounts) -> MotCounts:
        return MotCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.true_boxes, self.tracker_boxes, self.misses, self.false_positives, self.id_switches, self.idtp)

    @property
    def mota(self) -> float:
        """1 - (misses + false positives + ID switches) / true boxes (1.0 when there is no true box)."""
        errors = self.misses + self.false_positives + self.id_switches
        return 1.0 - errors / self.true_boxes if self.true_boxes else 1.0

    @property
    def idf1(self) -> float:
        """2 IDTP / (true boxes + tracker boxes) (1.0 when both are empty)."""
        total = self.true_boxes + self.tracker_boxes
        return 2 * self.idtp / total if total else 1.0


def evaluate(
    truth: Iterable[tuple[np.ndarray, np.ndarray]],
    tracked: Iterable[tuple[np.ndarray, np.ndarray]],
    iou_threshold: float = IOU_THRESHOLD,
) -> MotCounts:
    """Score one sequence: ``truth`` and ``tracked`` give, per frame in order, ``(ids (N,), xyxy (N, 4))``.

    Raises:
        ValueError: the two have a different number of frames.
    """
    truth, tracked = list(truth), list(tracked)
    if len(truth) != len(tracked):
        raise ValueError(f"truth has {len(truth)} frames, the tracker output {len(tracked)}: score the same frames")
    last_match: dict[int, int] = {}
    pair_frames: dict[tuple[int, int], int] = defaultdict(int)
    true_frames: dict[int, int] = defaultdict(int)
    tracker_frames: dict[int, int] = defaultdict(int)
    misses = false_positives = id_switches = 0
    for (true_ids, true_xyxy), (hyp_ids, hyp_xyxy) in zip(truth, tracked, strict=True):
        true_ids, hyp_ids = np.asarray(true_ids, dtype=int).tolist(), np.asarray(hyp_ids, dtype=int).tolist()
        iou = iou_matrix(true_xyxy, hyp_xyxy)
        for g in true_ids:
            true_frames[g] += 1
        for h in hyp_ids:
            tracker_frames[h] += 1
        for i, j in zip(*np.nonzero(iou >= iou_threshold), strict=True):
            pair_frames[(true_ids[i], hyp_ids[j])] += 1
        pairs = _match_frame(true_ids, hyp_ids, iou, iou_threshold, last_match)
        for i, j in pairs:
            g, h = true_ids[i], hyp_ids[j]
            id_switches += int(g in last_match and last_match[g] != h)
            last_match[g] = h
        misses += len(true_ids) - len(pairs)
        false_positives += len(hyp_ids) - len(pairs)
    idtp = _identity_true_positives(pair_frames)
    return MotCounts(
        sum(true_frames.values()), sum(tracker_frames.values()), misses, false_positives, id_switches, idtp
    )


def _match_frame(
    true_ids: list[int], hyp_ids: list[int], iou: np.ndarray, iou_threshold: float, last_match: dict[int, int]
) -> list[tuple[int, int]]:
    """One frame's (true index, tracker index) pairs: kept correspondences first, then the Hungarian method."""
    allowed = iou >= iou_threshold
    hyp_index = {h: j for j, h in enumerate(hyp_ids)}
    pairs, taken_hyp = [], set()
    for i, g in enumerate(true_ids):
        j = hyp_index.get(last_match.get(g, -1))
        if j is not None and j not in taken_hyp and allowed[i, j]:
            pairs.append((i, j))
            taken_hyp.add(j)
    taken_true = {i for i, _ in pairs}
    free_true = [i for i in range(len(true_ids)) if i not in taken_true]
    free_hyp = [j for j in range(len(hyp_ids)) if j not in taken_hyp]
    if free_true and free_hyp:
        sub = np.where(allowed[np.ix_(free_true, free_hyp)], iou[np.ix_(free_true, free_hyp)], 0.0)
        rows, cols = linear_sum_assignment(sub, maximize=True)
        pairs += [(free_true[r], free_hyp[c]) for r, c in zip(rows, cols, strict=True) if sub[r, c] > 0]
    return pairs


def _identity_true_positives(pair_frames: dict[tuple[int, int], int]) -> int:
    """IDTP: the most frames matched under a one-to-one pairing of true ids with tracker ids."""
    if not pair_frames:
        return 0
    true_ids = sorted({g for g, _ in pair_frames})
    hyp_ids = sorted({h for _, h in pair_frames})
    row, col = {g: i for i, g in enumerate(true_ids)}, {h: j for j, h in enumerate(hyp_ids)}
    counts = np.zeros((len(true_ids), len(hyp_ids)))
    for (g, h), n in pair_frames.items():
        counts[row[g], col[h]] = n
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return int(counts[rows, cols].sum())
