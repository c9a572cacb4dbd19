"""Kalman tracking of anchors and parts across frames (filterpy): ``Tracker`` gives detections stable ids.

One ``Tracker`` per stream and class family; ``update(detections, t)`` sets ``tracker_id`` (-1 until a track is
confirmed) and ``data["smoothed_xyxy"]``; ``predict(t)`` gives the boxes expected at ``t``.
"""

from __future__ import annotations

from streamlabel.tracking.association import Association, associate, centre_distance_matrix, iou_matrix
from streamlabel.tracking.kalman import BoxKalman
from streamlabel.tracking.tracker import SMOOTHED_KEY, UNCONFIRMED, Tracker, TrackerConfig

__all__ = [
    "SMOOTHED_KEY",
    "UNCONFIRMED",
    "Association",
    "BoxKalman",
    "Tracker",
    "TrackerConfig",
    "associate",
    "centre_distance_matrix",
    "iou_matrix",
]
