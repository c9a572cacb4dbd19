"""What a part track carries from frame to frame (``PartMemory``), and where its last seen box has moved to with
its anchor since then (``carried_box``): eyes move with the dog."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from streamlabel.stages.base import Verdict
from streamlabel.tracking.consistency import box_affine
from streamlabel.tracking.tracker import SMOOTHED_KEY, UNCONFIRMED


@dataclass
class PartMemory:
    """What a part track carries from frame to frame (``StreamTracks`` keeps one per live part track)."""

    anchor_track_id: int = UNCONFIRMED
    confidence: float = 0.0
    mask: np.ndarray | None = None  # the reference: the last accepted mask
    box: np.ndarray | None = None  # its smoothed box
    verdict: Verdict | None = None  # the last fresh verdict of an accepted mask, while it stands
    verdict_t: float = 0.0
    verdict_anchor_track_id: int = UNCONFIRMED  # the anchor track the part was linked to when judged
    reuses: int = 0  # frames that reused ``verdict``
    flagged_in_a_row: int = 0
    seen_t: float = -np.inf  # when the track last matched a grounded part
    seen_box: np.ndarray | None = None  # its smoothed box then
    seen_anchor_box: np.ndarray | None = None  # its anchor's smoothed box then
    patch: np.ndarray | None = None  # what the part looked like in its reference frame (``appearance_patch``)
    identity_log_odds: float = 0.0  # the track's evidence that it is the target (``reuse.add_identity``)
    identity_t: float = 0.0  # when it was last updated


def carried_box(memory: PartMemory, anchors: sv.Detections) -> np.ndarray | None:
    """The part's last seen box carried along by its anchor's motion since then; None when its anchor track is
    not in this frame (``anchors``, tracked, with smoothed boxes)."""
    if memory.seen_box is None or memory.seen_anchor_box is None or anchors.tracker_id is None:
        return None
    hit = np.flatnonzero(anchors.tracker_id == memory.anchor_track_id)
    if memory.anchor_track_id == UNCONFIRMED or len(hit) == 0:
        return None
    now = np.asarray(anchors.data.get(SMOOTHED_KEY, anchors.xyxy), dtype=np.float64)[hit[0]]
    m = box_affine(memory.seen_anchor_box, now)
    scale, shift = np.tile(np.diag(m[:, :2]), 2), np.tile(m[:, 2], 2)
    return memory.seen_box * scale + shift
