"""Match predicted track boxes to detected boxes: Hungarian assignment on IoU, with a centre-distance fallback.

Small boxes such as eyes often do not overlap from one sampled frame to the next even when they are the same
object; such a pair still matches when its centres are closer than ``centre_distance`` box diagonals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Association:
    """The result of ``associate``: index pairs and the leftovers on each side.

    Attributes:
        matches: ``(K, 2)`` int array of ``(track_index, detection_index)`` rows, sorted by detection index.
        unmatched_tracks: track indices with no detection, ascending.
        unmatched_detections: detection indices with no track, ascending.
    """

    matches: np.ndarray
    unmatched_tracks: np.ndarray
    unmatched_detections: np.ndarray


def iou_matrix(tracks: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """IoU of every track box with every detection box: ``(T, 4), (D, 4) -> (T, D)``; empty sides give empty shapes."""
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    if len(tracks) == 0 or len(detections) == 0:
        return np.zeros((len(tracks), len(detections)))
    # Written out rather than supervision's box_iou_batch: this runs every frame and its checks cost more than the math.
    t, d = tracks[:, None, :], detections[None, :, :]
    w = (np.minimum(t[..., 2], d[..., 2]) - np.maximum(t[..., 0], d[..., 0])).clip(0)
    h = (np.minimum(t[..., 3], d[..., 3]) - np.maximum(t[..., 1], d[..., 1])).clip(0)
    inter = w * h
    area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    area_d = (d[..., 2] - d[..., 0]) * (d[..., 3] - d[..., 1])
    union = area_t + area_d - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def centre_distance_matrix(tracks: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """Centre distance of every pair divided by the mean of the two box diagonals: ``(T, D)``, unitless."""
    tracks = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    centre_t = (tracks[:, :2] + tracks[:, 2:]) / 2
    centre_d = (detections[:, :2] + detections[:, 2:]) / 2
    distance = np.linalg.norm(centre_t[:, None, :] - centre_d[None, :, :], axis=2)
    diagonal_t = np.linalg.norm(tracks[:, 2:] - tracks[:, :2], axis=1)
    diagonal_d = np.linalg.norm(detections[:, 2:] - detections[:, :2], axis=1)
    scale = (diagonal_t[:, None] + diagonal_d[None, :]) / 2
    return np.divide(distance, scale, out=np.full_like(distance, np.inf), where=scale > 0)


def affinity_matrix(
    tracks: np.ndarray, detections: np.ndarray, iou_threshold: float, centre_distance: float | np.ndarray
) -> np.ndarray:
    """Match scores ``(T, D)``: the IoU where it reaches ``iou_threshold``, else a centre-distance score below it.

    The fallback score falls linearly from ``iou_threshold`` (same centre) to 0 (centres ``centre_distance``
    diagonals apart), so any overlapping pair is preferred to a merely close one. Pairs scoring 0 may not match.
    Computed in one pass (the same figures as ``iou_matrix`` and ``centre_distance_matrix``): it runs every frame.
    """
    t = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    d = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    if len(t) == 0 or len(d) == 0:
        return np.zeros((len(t), len(d)))
    size_t, size_d = t[:, 2:] - t[:, :2], d[:, 2:] - d[:, :2]
    overlap = np.maximum(np.minimum(t[:, None, 2:], d[None, :, 2:]) - np.maximum(t[:, None, :2], d[None, :, :2]), 0)
    inter = overlap[..., 0] * overlap[..., 1]
    union = (size_t[:, 0] * size_t[:, 1])[:, None] + (size_d[:, 0] * size_d[:, 1])[None, :] - inter
    iou = inter / np.maximum(union, 1e-12)
    reach = np.broadcast_to(np.asarray(centre_distance, dtype=np.float64), (len(t),))[:, None]
    if not np.any(reach > 0):
        return np.where(iou >= iou_threshold, iou, 0.0)
    gap = (t[:, None, :2] + t[:, None, 2:] - d[None, :, :2] - d[None, :, 2:]) / 2
    distance = np.sqrt((gap * gap).sum(axis=2))
    scale = (np.hypot(size_t[:, 0], size_t[:, 1])[:, None] + np.hypot(size_d[:, 0], size_d[:, 1])[None, :]) / 2
    closeness = 1.0 - distance / (np.maximum(scale, 1e-12) * np.maximum(reach, 1e-12))
    fallback = np.where((scale > 0) & (reach > 0), iou_threshold * np.minimum(np.maximum(closeness, 0.0), 1.0), 0.0)
    return np.where(iou >= iou_threshold, iou, fallback)


def associate(
    tracks: np.ndarray,
    detections: np.ndarray,
    iou_threshold: float,
    centre_distance: float | np.ndarray,
    track_classes: np.ndarray | None = None,
    detection_classes: np.ndarray | None = None,
) -> Association:
    """Assign detections to tracks one-to-one, maximising the total affinity (``linear_sum_assignment``).

    Args:
        tracks: ``(T, 4)`` predicted xyxy boxes of the live tracks.
        detections: ``(D, 4)`` detected xyxy boxes.
        iou_threshold: the IoU a pair needs to match on overlap alone.
        centre_distance: pairs below the IoU threshold still match when their centres are closer than this many
            box diagonals (mean of the two boxes); 0 turns the fallback off. One value, or one per track ``(T,)``.
        track_classes, detection_classes: optional class ids; pairs of different classes never match.
    """
    affinity = affinity_matrix(tracks, detections, iou_threshold, centre_distance)
    if track_classes is not None and detection_classes is not None and affinity.size:
        same = np.asarray(track_classes)[:, None] == np.asarray(detection_classes)[None, :]
        affinity = np.where(same, affinity, 0.0)
    n_tracks, n_detections = affinity.shape
    if affinity.size == 0:
        return Association(np.zeros((0, 2), dtype=int), np.arange(n_tracks), np.arange(n_detections))
    rows, cols = linear_sum_assignment(affinity, maximize=True)
    # Plain Python from here: a handful of pairs, where each numpy call would cost more than the work.
    scores = affinity[rows, cols].tolist()
    pairs = sorted((c, r) for r, c, score in zip(rows.tolist(), cols.tolist(), scores, strict=True) if score > 0)
    matched_tracks = {r for _, r in pairs}
    matched_detections = {c for c, _ in pairs}
    return Association(
        matches=np.array([(r, c) for c, r in pairs], dtype=int).reshape(-1, 2),
        unmatched_tracks=np.array([i for i in range(n_tracks) if i not in matched_tracks], dtype=int),
        unmatched_detections=np.array([j for j in range(n_detections) if j not in matched_detections], dtype=int),
    )


class MatchRounds:
    """Association in rounds: each ``run`` matches the tracks and detections that earlier rounds left free.

    Args:
        tracks: ``(T, 4)`` predicted xyxy boxes.
        detections: ``(D, 4)`` detected xyxy boxes.
        track_classes, detection_classes: optional class ids; pairs of different classes never match.
    """

    def __init__(
        self,
        tracks: np.ndarray,
        detections: np.ndarray,
        track_classes: np.ndarray | None = None,
        detection_classes: np.ndarray | None = None,
    ) -> None:
        self.tracks = tracks
        self.detections = detections
        self.track_classes = track_classes
        self.detection_classes = detection_classes
        self.pairs: list[tuple[int, int]] = []
        self.matched_tracks: set[int] = set()
        self.matched_detections: set[int] = set()

    def free_tracks(self) -> list[int]:
        """Indices of the tracks no round has matched yet, ascending."""
        return [i for i in range(len(self.tracks)) if i not in self.matched_tracks]

    def run(
        self,
        detection_rows: list[int],
        iou_threshold: float,
        centre_distance: float | np.ndarray,
        boxes: dict[int, np.ndarray] | None = None,
    ) -> None:
        """Match the free tracks (only those in ``boxes``, at those boxes, when given) to the free detections among
        ``detection_rows`` with ``associate``; record the pairs. ``centre_distance`` may be one value per track
        ``(T,)`` (indexed like ``tracks``)."""
        rows = [i for i in (boxes or range(len(self.tracks))) if i not in self.matched_tracks]
        cols = [j for j in detection_rows if j not in self.matched_detections]
        if not rows or not cols:
            return
        track_boxes = np.array([boxes[i] for i in rows]) if boxes else self.tracks[rows]
        classes = (self.track_classes, self.detection_classes)
        result = associate(
            track_boxes,
            self.detections[cols],
            iou_threshold,
            centre_distance if np.ndim(centre_distance) == 0 else np.asarray(centre_distance)[rows],
            None if classes[0] is None else classes[0][rows],
            None if classes[1] is None else classes[1][cols],
        )
        for r, c in result.matches.tolist():
            self.pairs.append((rows[r], cols[c]))
            self.matched_tracks.add(rows[r])
            self.matched_detections.add(cols[c])
