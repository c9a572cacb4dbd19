"""Kalman tracking of anchors and parts across frames (filterpy): ``Tracker`` gives detections stable ids.

One ``Tracker`` per stream and class family; ``update(detections, t)`` sets ``tracker_id`` (-1 until a track is
confirmed) and ``data["smoothed_xyxy"]``; ``predict(t)`` gives the boxes expected at ``t``. ``StreamTracks`` holds
one stream's anchor and part trackers for the Labeler, with the mask consistency check (``consistency``) and the
track segments clips are cut from (``segments``).
"""

from __future__ import annotations

from streamlabel.tracking.association import Association, associate, centre_distance_matrix, iou_matrix
from streamlabel.tracking.consistency import box_affine, consistency_score, mask_iou
from streamlabel.tracking.kalman import BoxKalman
from streamlabel.tracking.segments import TrackSegment
from streamlabel.tracking.streams import StreamTracks
from streamlabel.tracking.tracker import SMOOTHED_KEY, UNCONFIRMED, Tracker, TrackerConfig

__all__ = [
    "SMOOTHED_KEY",
    "UNCONFIRMED",
    "Association",
    "BoxKalman",
    "StreamTracks",
    "TrackSegment",
    "Tracker",
    "TrackerConfig",
    "associate",
    "box_affine",
    "centre_distance_matrix",
    "consistency_score",
    "iou_matrix",
    "mask_iou",
]
