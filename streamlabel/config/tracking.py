"""``tracking``: Kalman tracking of anchors and parts, temporal mask consistency, and the work it lets us skip."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamlabel.config.base import _Model
from streamlabel.config.novelty import NoveltyConfig


class TrackingConfig(_Model):
    """Follows anchors and parts across the sampled frames of each stream (filterpy Kalman filters)."""

    enabled: bool = Field(True, description="Track anchors and parts. Off: no track ids, no consistency check.")
    max_age_s: float = Field(
        2.0,
        ge=0,
        description="Seconds a confirmed track lives without a match. Longer bridges occlusions and misses, at the "
        "risk of handing an old id to a new object.",
    )
    reuse_min_similarity: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="A reused verdict also needs the part to look like it did when it was accepted: the normalised "
        "correlation of small grayscale patches of its box. An eye that closes keeps a consistent mask but not "
        "its look. Higher reuses less (more validator calls); lower lets more changes pass on an old verdict.",
    )
    identity_half_life_s: float = Field(
        20.0,
        gt=0,
        description="A part track's verdicts on what the candidate is (the not_target checks: an eye, not a nose) "
        "add up over its frames, and an accepted verdict that its track's record contradicts goes to review. "
        "Older verdicts fade with this half-life. Longer trusts the record more (fewer one-off false accepts, "
        "more review after a track id passes to another object); shorter trusts each verdict alone.",
    )
    min_hits: int = Field(
        2,
        ge=1,
        description="Matched frames in a row before a track gets an id. Higher drops one-frame false detections "
        "and leaves the first frames of every object without an id.",
    )
    iou_threshold: float = Field(
        0.3,
        gt=0,
        le=1,
        description="IoU a predicted box and a detection need to match. Higher splits fast movers into new tracks; "
        "lower may swap ids between neighbours.",
    )
    centre_distance: float = Field(
        1.0,
        ge=0,
        description="Fallback for small boxes (eyes) that no longer overlap: match when the centres are closer "
        "than this many box diagonals. 0 turns it off; higher follows faster parts, may swap two eyes.",
    )
    process_noise: float = Field(
        1.75,
        gt=0,
        description="Scales the Kalman process noise. Higher follows changes of motion sooner (people turning and "
        "stopping), smooths less.",
    )
    measurement_noise: float = Field(
        1.0, gt=0, description="Scales the Kalman measurement noise. Higher trusts detections less, smooths more."
    )
    low_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Anchors the detector scores below this (and at or above target.anchor.min_confidence) only "
        "match tracks left over by confident ones and never start a track. 0 turns it off; higher keeps partly "
        "hidden objects on their tracks and stops false low-scoring detections starting tracks, too high and "
        "objects detected with low scores never get an id. Parts are tracked without it (grounding scores are on "
        "another scale).",
    )
    consistency_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A part mask whose IoU with the previous mask of its track, moved by the track's motion, is "
        "below this is flagged inconsistent. Higher catches more flicker and flags more real changes (blinks).",
    )
    on_inconsistent: Literal["review", "reject"] = Field(
        "review", description="What happens to an inconsistent mask: sent to a person, or rejected."
    )
    ground_every: int = Field(
        1,
        ge=1,
        description="Run Grounding DINO on every k-th sampled frame per stream; in between, SAM2 segments the "
        "Kalman-predicted part boxes. Higher is faster and misses parts that appear in between.",
    )
    revalidate_s: float = Field(
        3.0,
        ge=0,
        description="Reuse a part track's accepted verdict for this many seconds while its mask stays consistent "
        "with its last accepted mask, it looks the same and it stays with the same anchor track (part- and "
        "anchor-scope checks only; frame-scope checks are answered every frame). Saves about 40% of VLM calls at "
        "no measured precision cost (docs/performance.md). 0 validates every candidate; higher saves more VLM "
        "calls and trusts older judgements.",
    )
    max_reuses: int = Field(
        5,
        ge=0,
        description="Frames in a row that may reuse one accepted verdict (within revalidate_s) before the part is "
        "judged again. Higher saves VLM calls; lower notices sooner a change the consistency check misses (an eye "
        "closing without its mask changing much).",
    )
    clip_pre_s: float = Field(2.0, ge=0, description="Seconds of video kept before a track segment in its clip.")
    clip_post_s: float = Field(2.0, ge=0, description="Seconds of video kept after a track segment in its clip.")
    clip_min_s: float = Field(
        1.0, ge=0, description="Shortest track segment (seconds, before pre/post-roll) that becomes a clip."
    )
    clip_max_s: float = Field(
        20.0,
        ge=1.0,
        le=3600.0,
        description="Longest track segment in one clip (seconds): a track on screen longer than this is cut into "
        "consecutive clips of the same track id, each written as soon as it is complete. Higher makes fewer, larger "
        "clips and more clip work at a stop (every open segment is cut then); lower makes more files. A live stream's "
        "clip holds at most daemon.clip_buffer_s of frames, so keep this at or below it there.",
    )
    novelty: NoveltyConfig = Field(
        default_factory=NoveltyConfig,
        description="Per-track novelty gate: near-copies of what a part track last kept are counted, not validated "
        "or stored.",
    )
