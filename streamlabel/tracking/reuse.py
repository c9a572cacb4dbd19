"""Whether a part track's verdict may stand for a new frame (``refusal_of``), and the track's record of what the
part is (``add_identity``): the rules behind ``StreamTracks.reusable``, ``refusal`` and ``add_identity``."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from streamlabel.config.tracking import TrackingConfig
from streamlabel.tracking.part_memory import PartMemory
from streamlabel.tracking.tracker import UNCONFIRMED


class Refusal(StrEnum):
    """Why a part track's verdict was not reused (``StreamTracks.refusal``)."""

    OFF = "off"  # revalidate_s is 0
    UNTRACKED = "untracked"  # the part has no confirmed track
    NO_VERDICT = "no_verdict"  # the track holds no reusable verdict (none yet, or withdrawn)
    MASK = "mask"  # the mask is not consistent with the track's reference
    ANCHOR = "anchor"  # the part is linked to another anchor track than when it was judged
    AGE = "age"  # the verdict is older than revalidate_s
    REUSES = "reuses"  # the verdict was reused max_reuses times
    LOOK = "look"  # the part no longer looks like it did (reuse_min_similarity)
    IDENTITY = "identity"  # a rejection whose track's identity record does not agree


def refusal_of(
    memory: PartMemory | None, cfg: TrackingConfig, t: float, score: float, anchor_track_id: int, appearance: float
) -> str:
    """Why the verdict of the track with ``memory`` (None: untracked) may not stand at ``t`` (a ``Refusal``), ""
    when it may; ``StreamTracks.reusable`` says what each rule means."""
    if cfg.revalidate_s <= 0:
        return Refusal.OFF
    if memory is None:
        return Refusal.UNTRACKED
    if memory.verdict is None:
        return Refusal.NO_VERDICT
    if not np.isfinite(score) or score < cfg.consistency_threshold:
        return Refusal.MASK
    if anchor_track_id == UNCONFIRMED or anchor_track_id != memory.verdict_anchor_track_id:
        return Refusal.ANCHOR
    if t - memory.verdict_t > cfg.revalidate_s:
        return Refusal.AGE
    if memory.reuses >= cfg.max_reuses:
        return Refusal.REUSES
    if memory.patch is not None and not appearance >= cfg.reuse_min_similarity:
        return Refusal.LOOK
    if not memory.verdict.passed and memory.identity_log_odds >= 0:
        return Refusal.IDENTITY  # a rejection as not the target stands only while the track's record agrees
    return ""


def add_identity(memory: PartMemory, t: float, probability: float | None, half_life_s: float) -> float:
    """Fade the track's identity evidence to ``t`` (``half_life_s``) and add a fresh verdict's ``probability``
    that the part is the target (bounded to [0.02, 0.98]; None adds nothing); return the evidence (log-odds)."""
    fade = 0.5 ** (max(t - memory.identity_t, 0.0) / half_life_s)
    memory.identity_log_odds *= fade
    memory.identity_t = t
    if probability is not None:
        p = min(max(probability, 0.02), 0.98)
        memory.identity_log_odds += float(np.log(p / (1.0 - p)))
    return memory.identity_log_odds
