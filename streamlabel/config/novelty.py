"""``tracking.novelty``: the per-track gate that counts near-copies instead of validating and storing them."""

from __future__ import annotations

from pydantic import Field

from streamlabel.config.base import _Model


class NoveltyConfig(_Model):
    """Keeps a tracked part only when it differs enough from what its track last kept.

    A new track's part is first kept at its ``min_track_frames``-th frame. After that, a part is kept when any
    measure reaches its threshold (its anchor's appearance, the part or anchor box moving or resizing,
    ``max_interval_s`` elapsed, a caller-given state changing); otherwise it is counted as a near-copy. With
    tracking off every part is kept; with tracking on, a frame with only tentative parts is not. The rule:
    docs/store.md ("Near-copies and daily budgets").
    Applied by the Labeler between tracking and validation (``judging.Sifter``).
    """

    enabled: bool = Field(
        True,
        description="Gate tracked parts by novelty (on by default). On, a camera watching a sleeping dog stores and "
        "validates about 94% fewer frames (`streamlabel bench static`) and a busy scene about two thirds fewer, "
        "with the dataset's precision kept (`streamlabel bench quality`, docs/performance.md). Off: every part goes "
        "on to the validator and the store (all near-copies of a still dog are labeled and kept).",
    )
    thumbnail_px: int = Field(
        16,
        ge=4,
        le=64,
        description="Side of the grayscale thumbnail of the anchor crop that stands for its appearance. Larger "
        "notices smaller changes (an ear turning) and also more sensor noise and JPEG artefacts.",
    )
    min_appearance_change: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Keep when the anchor's appearance changed by at least this much since the last kept frame "
        "((1 - correlation) / 2 of the thumbnails, 0 = same picture, 1 = inverted). Raising it keeps fewer "
        "frames of a dog that shifts in place and stores fewer near-copies; too high misses real pose changes.",
    )
    max_part_iou: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Keep when the part box overlaps its last kept box by at most this IoU (the eye moved). "
        "Raising it keeps frames after smaller movements (more frames, more near-copies); 0 keeps only when the "
        "boxes no longer overlap.",
    )
    max_anchor_iou: float = Field(
        0.8,
        ge=0,
        lt=1,
        description="Keep when the anchor box overlaps its last kept box by at most this IoU (the dog moved or "
        "changed pose). Raising it keeps frames after smaller movements; 0 keeps only when the boxes no longer "
        "overlap.",
    )
    min_size_change: float = Field(
        0.3,
        gt=0,
        description="Keep when the part box's area changed by at least this share of the last kept one (closer, "
        "further, an eye opening). Raising it keeps fewer frames of a part that only grows or shrinks.",
    )
    min_novel_frames: int = Field(
        3,
        ge=1,
        le=10,
        description="A change (appearance, box moved or resized) must last this many sampled frames of the track in "
        "a row before a part is kept, so a one-frame outlier box is not a new moment; state changes and "
        "max_interval_s keep at once. Raising it ignores longer glitches and keeps a real change later (and misses "
        "changes shorter than that); 1 keeps at the first changed frame.",
    )
    min_track_frames: int = Field(
        3,
        ge=1,
        le=20,
        description="A new part track is first sent on at its this-many-th sampled frame as a confirmed track (the "
        "first part of a track is kept at once with 1). Short false tracks (a box on a cushion's button, an ear seen "
        "for a moment) then never reach the validator or the store, and a dog's first frames, before its own track "
        "is confirmed, are not judged. Raising it also ignores longer false tracks, and labels a new dog later "
        "(and not at all if it stays for fewer frames).",
    )
    max_interval_s: float = Field(
        60.0,
        gt=0,
        description="Keep a track's frame at least this often (seconds since its last kept frame) even when "
        "nothing changed, so a still scene is sampled now and then. Raising it stores fewer copies of still "
        "scenes and notices slow changes (light) later.",
    )
