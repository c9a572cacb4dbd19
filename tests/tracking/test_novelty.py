"""The novelty gate on hand-made sequences: still, drifting, suddenly changed, and state-changed tracks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamlabel.config import NoveltyConfig
from streamlabel.tracking.novelty import NEW_TRACK_NOVELTY, NoveltyGate, appearance_change, thumbnail_embedding

H, W = 240, 320
ANCHOR = np.array([80.0, 60.0, 240.0, 200.0])
PART = np.array([120.0, 90.0, 140.0, 110.0])
STEP_S = 0.5


def scene(seed: int = 0, shift_px: float = 0.0, noise_seed: int | None = None) -> np.ndarray:
    """A smooth textured background with a 'dog' (a blotchy patch) inside ANCHOR moved right by ``shift_px``."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (12, 16, 3)).astype(np.float32)
    background = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    dog = cv2.resize(rng.integers(0, 255, (8, 8, 3)).astype(np.float32), (160, 140), interpolation=cv2.INTER_CUBIC)
    image = background.copy()
    x0 = round(80 + shift_px)
    image[60:200, x0 : x0 + 160] = dog
    if noise_seed is not None:
        image += np.random.default_rng(noise_seed).normal(0, 3, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def moved(box: np.ndarray, dx: float = 0.0, grow: float = 0.0) -> np.ndarray:
    """``box`` shifted right by ``dx`` and grown at its bottom-right corner by ``grow`` pixels."""
    return box + np.array([dx, 0.0, dx + grow, grow])


def run(gate: NoveltyGate, frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]]) -> list[int]:
    """Decide every frame of one track (id 7), STEP_S apart; the indices of the kept ones."""
    kept = []
    for i, (image, anchor, part, state) in enumerate(frames):
        if gate.decide("cam", 7, i * STEP_S, image, anchor, part, state).keep:
            kept.append(i)
    return kept


def test_a_still_scene_keeps_the_first_frame_and_then_one_per_max_interval() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1, max_interval_s=60.0))
    # 150 s of the same picture with sensor noise: 0, 60 and 120 s are kept, nothing else.
    frames = [(scene(noise_seed=i), ANCHOR, PART, ()) for i in range(300)]
    assert run(gate, frames) == [0, 120, 240]
    assert gate.counts("cam") == {"kept": 3, "dropped": 297}


def test_a_slow_drift_is_kept_every_so_often_not_every_frame() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1, max_interval_s=10_000.0))
    frames = []
    for i in range(200):  # 0.3 px per frame to the right: 60 px in 100 s
        shift = i * 0.3
        frames.append((scene(shift_px=shift), moved(ANCHOR, shift), moved(PART, shift), ()))
    kept = run(gate, frames)
    assert kept[0] == 0
    assert 3 <= len(kept) <= 40, kept
    gaps = np.diff(kept)
    assert gaps.min() > 1, kept  # never two frames in a row: each keep needs the drift to add up again


@pytest.mark.parametrize(("min_novel_frames", "kept_at"), [(1, 20), (3, 22)])
def test_a_sudden_change_is_kept_once_it_lasts_and_is_the_new_reference(min_novel_frames: int, kept_at: int) -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1, min_novel_frames=min_novel_frames))
    still = [(scene(seed=0, noise_seed=i), ANCHOR, PART, ()) for i in range(20)]
    turned = [(scene(seed=5, noise_seed=100 + i), ANCHOR, PART, ()) for i in range(10)]
    assert run(gate, still + turned) == [0, kept_at]
    decision = gate.decide("cam", 7, 30 * STEP_S, scene(seed=5, noise_seed=500), ANCHOR, PART, ())
    assert not decision.keep and decision.reason == "near_copy"


@pytest.mark.parametrize(
    ("anchor", "part", "reason"),
    [
        (moved(ANCHOR, 60), moved(PART, 60), "anchor_moved"),  # the dog moved: anchor IoU 0.45 is the largest
        (ANCHOR, moved(PART, 30), "part_moved"),  # only the eye box moved: its IoU is 0
        (ANCHOR, moved(PART, grow=12), "part_size"),  # the eye box grew 2.56 times (IoU 0.39)
    ],
)
def test_a_moved_or_resized_box_is_kept_with_its_reason(anchor: np.ndarray, part: np.ndarray, reason: str) -> None:
    gate = NoveltyGate(
        NoveltyConfig(enabled=True, min_track_frames=1, min_appearance_change=1.0, max_part_iou=0.2, min_novel_frames=1)
    )
    image = scene()
    assert gate.decide("cam", 1, 0.0, image, ANCHOR, PART).reason == "first"
    decision = gate.decide("cam", 1, 0.5, image, anchor, part)
    assert decision.keep and decision.reason == reason
    assert decision.novelty == pytest.approx(max(decision.measures.values())) and decision.novelty >= 1.0


def test_a_changed_state_forces_a_keep_then_the_new_state_is_the_reference() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1))
    frames = [(scene(noise_seed=i), ANCHOR, PART, ("open",) if i < 10 else ("closed",)) for i in range(20)]
    assert run(gate, frames) == [0, 10]
    decision = gate.decide("cam", 7, 10.0, scene(noise_seed=99), ANCHOR, PART, ("closed",))
    assert decision.reason == "near_copy"
    changed = gate.decide("cam", 7, 10.5, scene(noise_seed=98), ANCHOR, PART, ("open",))
    assert changed.keep and changed.reason == "state" and changed.novelty >= 1.0


def test_untracked_parts_are_always_kept_and_tracks_are_separate() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1))
    image = scene()
    for t in range(5):
        decision = gate.decide("cam", None, float(t), image, ANCHOR, PART)
        assert decision.keep and decision.reason == "untracked" and decision.novelty == NEW_TRACK_NOVELTY
    assert gate.decide("cam", 1, 0.0, image, ANCHOR, PART).keep
    assert not gate.decide("cam", 1, 0.5, image, ANCHOR, PART).keep
    assert gate.decide("cam", 2, 0.5, image, ANCHOR, PART).reason == "first"  # another track of the stream
    assert gate.decide("other", 1, 0.5, image, ANCHOR, PART).reason == "first"  # the same id on another stream
    gate.forget("cam", 1)
    assert gate.decide("cam", 1, 1.0, image, ANCHOR, moved(PART, 40)).reason == "first"
    # A new id where a track not seen now last kept its part: the tracker found the part again, not a new one.
    assert gate.decide("cam", 3, 1.0, image, ANCHOR, PART).reason == "near_copy"
    assert gate.counts("cam") == {"kept": 8, "dropped": 2}
    assert gate.counts("other") == {"kept": 1, "dropped": 0}


def test_a_new_track_is_first_kept_at_its_min_track_frames_th_decision() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=3))
    image = scene()
    # A short false track (two frames, say a box on a cushion's button) is never sent on.
    assert [gate.decide("cam", 4, t * STEP_S, image, ANCHOR, moved(PART, 80)).reason for t in range(2)] == ["new"] * 2
    # A lasting one is kept at its third frame, which becomes its reference; the near-copies after it are dropped.
    reasons = [gate.decide("cam", 7, t * STEP_S, image, ANCHOR, PART).reason for t in range(5)]
    assert reasons == ["new", "new", "first", "near_copy", "near_copy"]
    assert gate.counts("cam") == {"kept": 1, "dropped": 6}
    # adopt (another part of its frame went on) makes a new track's part its reference at once.
    gate.adopt("cam", 9, 3.0, image, ANCHOR, moved(PART, -60))
    assert gate.decide("cam", 9, 3.5, image, ANCHOR, moved(PART, -60)).reason == "near_copy"
    # A forgotten track starts over.
    gate.forget("cam", 4)
    assert gate.decide("cam", 4, 4.0, image, ANCHOR, moved(PART, 80)).reason == "new"


def test_disabled_keeps_everything() -> None:
    gate = NoveltyGate(NoveltyConfig(enabled=False))
    image = scene()
    assert all(gate.decide("cam", 1, t * 0.5, image, ANCHOR, PART).keep for t in range(5))
    assert gate.tracks() == 0


def test_the_thumbnail_ignores_exposure_but_not_a_new_picture() -> None:
    image = scene()
    brighter = np.clip(image.astype(np.float32) * 1.25 + 10, 0, 255).astype(np.uint8)
    a, b = thumbnail_embedding(image, ANCHOR), thumbnail_embedding(brighter, ANCHOR)
    assert a.shape == (256,) and np.linalg.norm(a) == pytest.approx(1.0)
    assert appearance_change(a, b) < 0.01
    assert appearance_change(a, thumbnail_embedding(scene(seed=5), ANCHOR)) > 0.1
    assert appearance_change(a, -a) == pytest.approx(1.0)
    flat = np.zeros_like(a)
    assert appearance_change(flat, flat) == 0.0 and appearance_change(flat, a) == 0.5


def test_an_embedder_hook_replaces_the_thumbnail() -> None:
    calls = []

    def embed(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        calls.append(xyxy.copy())
        return np.array([1.0, 0.0]) if image.mean() < 128 else np.array([0.0, 1.0])

    gate = NoveltyGate(NoveltyConfig(enabled=True, min_track_frames=1, min_novel_frames=1), embedder=embed)
    dark, light = np.full((H, W, 3), 50, np.uint8), np.full((H, W, 3), 200, np.uint8)
    assert gate.decide("cam", 3, 0.0, dark, ANCHOR, PART).keep
    assert not gate.decide("cam", 3, 0.5, dark, ANCHOR, PART).keep
    light_decision = gate.decide("cam", 3, 1.0, light, ANCHOR, PART)
    assert light_decision.keep and light_decision.reason == "appearance"
    # The reference's box on each decision, and the new reference's box on each keep.
    assert len(calls) == 4 and all(np.array_equal(c, ANCHOR) for c in calls)
