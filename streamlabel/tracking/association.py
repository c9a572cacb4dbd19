"""Match predicted track boxes to detected boxes: Hungarian assignment on IoU, with a centre-distance fallback.

Small boxes such as eyes often do not overlap from one sampled frame to the next even when they are the same
object; such a pair still matches when its centres are closer than ``centre_distance`` box diagonals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from supervision.detection.utils.iou_and_nms import box_iou_batch

logger = logging.getLogger(__name__)


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
    return box_iou_batch(tracks, detections).astype(np.float64)


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
    tracks: np.ndarray, detections: np.ndarray, iou_threshold: float, centre_distance: float
) -> np.ndarray:
    """Match scores ``(T, D)``: the IoU where it reaches ``iou_threshold``, else a centre-distance score below it.

    The fallback score falls linearly from ``iou_threshold`` (same centre) to 0 (centres ``centre_distance``
    diagonals apart), so any overlapping pair is preferred to a merely close one. Pairs scoring 0 may not match.
    """
    iou = iou_matrix(tracks, detections)
    if iou.size == 0:
        return iou
    closeness = 1.0 - centre_distance_matrix(tracks, detections) / centre_distance if centre_distance > 0 else 0.0
    fallback = iou_threshold * np.clip(closeness, 0.0, 1.0)
    return np.where(iou >= iou_threshold, iou, fallback)


def associate(
    tracks: np.ndarray,
    detections: np.ndarray,
    iou_threshold: float,
    centre_distance: float,
    track_classes: np.ndarray | None = None,
    detection_classes: np.ndarray | None = None,
) -> Association:
    """Assign detections to tracks one-to-one, maximising the total affinity (``linear_sum_assignment``).

    Args:
        tracks: ``(T, 4)`` predicted xyxy boxes of the live tracks.
        detections: ``(D, 4)`` detected xyxy boxes.
        iou_threshold: the IoU a pair needs to match on overlap alone.
        centre_distance: pairs below the IoU threshold still match when their centres are closer than this many
            box diagonals (mean of the two boxes); 0 turns the fallback off.
        track_classes, detection_classes: optional class ids; pairs of different classes never match.
    """
    affinity = affinity_matrix(tracks, detections, iou_threshold, centre_distance)
    if track_classes is not None and detection_classes is not None and affinity.size:
        same = np.asarray(track_classes)[:, None] == np.asarray(detection_classes)[None, :]
        affinity = np.where(same, affinity, 0.0)
    rows, cols = linear_sum_assignment(affinity, maximize=True)
    keep = affinity[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cols)
    matches = np.stack([rows[order], cols[order]], axis=1).astype(int).reshape(-1, 2)
    return Association(
        matches=matches,
        unmatched_tracks=np.setdiff1d(np.arange(affinity.shape[0]), rows).astype(int),
        unmatched_detections=np.setdiff1d(np.arange(affinity.shape[1]), cols).astype(int),
    )
