"""Stage 2: prompt normalisation, the spatial filter on hand-made boxes, and the tiny Grounding DINO end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import torch

from streamlabel.config import GroundModelConfig, PartConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.ground import (
    GroundingDinoGrounder,
    area_ratio_ok,
    assign_to_anchors,
    crop_boxes,
    crop_to_frame,
    filter_parts,
    merge_and_cap,
    normalize_prompt,
    one_per_part,
    parts_detections,
)
from streamlabel.tiny.gdino import build_tiny_grounding_dino

EMPTY = np.empty((0, 4))
# Two anchors: A covers the top-left 100x100, B (area 1600) sits inside A.
A = [0, 0, 100, 100]
B = [40, 40, 80, 80]


def box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


# --------------------------------------------------------------------------------------------- prompt


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("eye", "eye."),
        ("Eye", "eye."),
        ("eye.", "eye."),
        (" eye . ", "eye."),
        ("left eye", "left eye."),
        ("LEFT   Eye..", "left eye."),
    ],
)
def test_prompt_is_lowercase_with_one_period(prompt: str, expected: str) -> None:
    assert normalize_prompt(prompt) == expected


# --------------------------------------------------------------------------------------------- crops


@pytest.mark.parametrize(
    ("anchors", "margin", "size", "expected"),
    [
        ([[10, 20, 110, 70]], 0.1, (200, 100), [[0, 15, 120, 75]]),  # pad 10 x 5, clipped at x=0
        ([[150, 80, 200, 100]], 0.5, (180, 90), [[125, 70, 180, 90]]),  # clipped at the far edges
        ([[10.4, 20.6, 30.2, 40.5]], 0.0, (64, 64), [[10, 20, 31, 41]]),  # grown to whole pixels
        ([[300, 300, 400, 400]], 0.1, (100, 100), [[100, 100, 100, 100]]),  # off-image: empty window
        (EMPTY, 0.1, (100, 100), EMPTY),
    ],
)
def test_crop_boxes(anchors, margin, size, expected) -> None:
    got = crop_boxes(np.asarray(anchors, dtype=np.float32), margin, *size)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.asarray(expected).reshape(-1, 4))


@pytest.mark.parametrize(
    ("boxes", "window", "expected"),
    [
        ([[5, 5, 15, 25]], [100, 50, 140, 90], [[105, 55, 115, 75]]),
        ([[-3, 10, 50, 20]], [100, 50, 140, 90], [[100, 60, 140, 70]]),  # clipped to the 40x40 crop
        (EMPTY, [100, 50, 140, 90], EMPTY),
    ],
)
def test_crop_to_frame(boxes, window, expected) -> None:
    got = crop_to_frame(np.asarray(boxes), np.asarray(window))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(expected).reshape(-1, 4))


# --------------------------------------------------------------------------------------------- spatial filter


@pytest.mark.parametrize(
    ("parts", "anchors", "hint", "expected"),
    [
        ([box(20, 20, 4, 4)], [A, B], None, [0]),
        ([box(60, 60, 4, 4)], [A, B], None, [1]),  # inside both: the smaller anchor wins
        ([box(200, 200, 4, 4)], [A, B], None, [-1]),
        ([box(99, 50, 30, 4)], [A], None, [0]),  # centre inside, box spills out: kept
        ([box(101, 50, 4, 4)], [A], None, [-1]),
        ([box(60, 60, 4, 4), box(20, 20, 4, 4)], [A, B], [0, 1], [0, -1]),  # crop mode: the crop's anchor
        (EMPTY, [A, B], None, []),
        ([box(20, 20, 4, 4)], EMPTY, None, [-1]),
    ],
)
def test_assign_to_anchors(parts, anchors, hint, expected) -> None:
    got = assign_to_anchors(np.asarray(parts), np.asarray(anchors), None if hint is None else np.array(hint))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("parts", "index", "expected"),
    [
        ([box(50, 50, 10, 10)], [0], [True]),  # 0.01 of the anchor
        ([box(50, 50, 50, 50)], [0], [True]),  # exactly max_area_ratio 0.25
        ([box(50, 50, 60, 60)], [0], [False]),  # 0.36
        ([box(50, 50, 1, 1)], [0], [False]),  # 0.0001 < 0.0005
        ([box(50, 50, 10, 10)], [-1], [False]),  # belongs to no anchor
        (EMPTY, [], []),
    ],
)
def test_area_ratio_bounds(parts, index, expected) -> None:
    got = area_ratio_ok(np.asarray(parts), np.asarray([A]), np.array(index, dtype=np.int64), 0.0005, 0.25)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("parts", "scores", "index", "max_per_anchor", "expected"),
    [
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 0], 5, [0]),  # IoU 0.82: the weaker goes
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.8, 0.9], [0, 0], 5, [1]),
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 1], 5, [0]),  # other anchor: one part, merged too
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.8, 0.9], [0, 1], 5, [1]),  # the best copy keeps its anchor
        ([[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.8], [0, 0], 5, [0, 1]),  # IoU 0.25: both stay
        ([[0, 0, 4, 4], [10, 0, 14, 4], [20, 0, 24, 4]], [0.5, 0.9, 0.7], [0, 0, 0], 1, [1]),
        ([[0, 0, 4, 4], [10, 0, 14, 4], [20, 0, 24, 4]], [0.5, 0.9, 0.7], [0, 0, 0], 2, [1, 2]),
        ([[0, 0, 4, 4], [10, 0, 14, 4], [20, 0, 24, 4]], [0.5, 0.9, 0.7], [1, 0, 1], 1, [1, 2]),
        (EMPTY, [], [], 2, []),
    ],
)
def test_nms_across_anchors_and_cap(parts, scores, index, max_per_anchor, expected) -> None:
    got = merge_and_cap(np.asarray(parts), np.asarray(scores), np.asarray(index), 0.5, max_per_anchor)
    np.testing.assert_array_equal(got, expected)


def test_filter_parts_two_anchors() -> None:
    part = PartConfig(max_per_anchor=1)
    parts = np.array(
        [
            box(20, 20, 10, 10),  # in A, kept (best of A)
            box(22, 20, 10, 10),  # in A, overlaps the first, weaker: NMS
            box(60, 60, 6, 6),  # in B (smaller), kept
            box(65, 65, 6, 6),  # in B, third of B by score: capped
            box(200, 200, 5, 5),  # outside both
            box(20, 80, 70, 70),  # in A but 0.49 of it: too large
        ]
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.99, 0.95])
    keep, index = filter_parts(parts, scores, np.array([A, B]), part)
    np.testing.assert_array_equal(keep, [0, 2])
    np.testing.assert_array_equal(index, [0, 1])


def test_an_eye_in_two_overlapping_crops_is_labeled_once() -> None:
    """Crop mode: dog A's crop and dog B's crop both contain the eye in their overlap; it comes back once, for the
    crop where it scored best, and the other eyes of each dog stay."""
    dog_a, dog_b = [0, 0, 100, 100], [60, 0, 160, 100]
    shared = box(80, 30, 8, 8)  # in both dogs
    parts = np.array(
        [
            box(20, 30, 8, 8),  # A's own eye (crop A)
            shared,  # crop A's copy of the shared eye
            shared,  # crop B's copy, a bit stronger
            box(140, 30, 8, 8),  # B's own eye (crop B)
        ]
    )
    parts[2] += [0.5, 0, 0.5, 0]  # the two copies differ by half a pixel, as boxes from two crops do
    scores = np.array([0.8, 0.6, 0.7, 0.9])
    hint = np.array([0, 0, 1, 1])
    keep, index = filter_parts(parts, scores, np.array([dog_a, dog_b]), PartConfig(min_area_ratio=0.001), hint)
    np.testing.assert_array_equal(keep, [0, 3, 2])
    np.testing.assert_array_equal(index, [0, 1, 1])


def test_one_per_part_merges_copies_across_anchors() -> None:
    parts = parts_detections(
        np.array([box(20, 20, 10, 10), box(21, 20, 10, 10), box(60, 20, 10, 10)]),
        [0.6, 0.9, 0.5],
        [0, 1, 1],
        "eye",
        ["eye"] * 3,
    )
    kept = one_per_part(parts, 0.5)
    np.testing.assert_array_equal(kept.data["anchor_index"], [1, 1])  # the stronger copy and its anchor
    np.testing.assert_allclose(kept.confidence, [0.9, 0.5])
    single = parts[:1]
    assert one_per_part(single, 0.5) is single


def test_filter_parts_empty() -> None:
    keep, index = filter_parts(EMPTY, np.empty(0), np.array([A]), PartConfig())
    assert keep.shape == (0,) and index.shape == (0,)


def test_parts_detections_empty_has_the_data_keys() -> None:
    det = parts_detections(EMPTY, [], [], "eye", [])
    assert len(det) == 0 and det.xyxy.shape == (0, 4)
    assert set(det.data) == {"anchor_index", "class_name", "phrase"}


# --------------------------------------------------------------------------------------------- tiny model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


def make_grounder(model: Path, mode: str = "crop", batch_size: int = 4, **part) -> GroundingDinoGrounder:
    # Random weights: thresholds at 0 and no area bounds so boxes come out at all.
    settings = {"box_threshold": 0.0, "text_threshold": 0.0, "min_area_ratio": 0.0, "max_area_ratio": 1.0}
    target = TargetConfig(part=PartConfig(mode=mode, **{**settings, **part}))
    return GroundingDinoGrounder(GroundModelConfig(model=str(model), batch_size=batch_size), target, Runtime())


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def anchors(*boxes: list[float]) -> sv.Detections:
    n = len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
        confidence=np.full(n, 0.9, dtype=np.float32),
        class_id=np.full(n, 16, dtype=np.int64),
    )


TWO_DOGS = anchors([10, 10, 200, 200], [150, 50, 310, 230])


@pytest.mark.parametrize("mode", ["crop", "full"])
def test_tiny_model_parts_lie_in_their_anchor(tiny_model: Path, frame: np.ndarray, mode: str) -> None:
    grounder = make_grounder(tiny_model, mode=mode, max_per_anchor=3)
    results = grounder.ground([frame, frame], [TWO_DOGS, TWO_DOGS[:1]])
    assert len(results) == 2
    for parts, anc in zip(results, [TWO_DOGS, TWO_DOGS[:1]], strict=True):
        assert len(parts) > 0
        assert parts.xyxy.dtype == np.float32 and parts.xyxy.shape == (len(parts), 4)
        assert parts.confidence.dtype == np.float32
        assert (parts.class_id == 0).all()
        assert set(parts.data["class_name"]) == {"eye"}
        assert set(parts.data["phrase"]) <= {"eye", ""}
        index = parts.data["anchor_index"]
        assert ((index >= 0) & (index < len(anc))).all()
        assert np.bincount(index).max() <= 3
        centre = parts.get_anchors_coordinates(sv.Position.CENTER)
        own = anc.xyxy[index]
        assert ((centre >= own[:, :2]) & (centre <= own[:, 2:])).all()


def test_tiny_model_overlapping_crops_give_no_duplicate_parts(tiny_model: Path, frame: np.ndarray) -> None:
    """The real crop path: two anchors on nearly the same place (one dog found twice, or two dogs cuddling) give
    nearly the same crop, so the model finds the same boxes in both; each comes back once."""
    grounder = make_grounder(tiny_model, max_per_anchor=10, nms_iou=0.5)
    dogs = anchors([10, 10, 220, 220], [10, 10, 222, 222])
    (parts,) = grounder.ground([frame], [dogs])
    (alone,) = grounder.ground([frame], [dogs[:1]])
    assert 0 < len(parts) <= len(alone) + 2  # per-anchor NMS returned about twice as many
    iou = sv.box_iou_batch(parts.xyxy, parts.xyxy)
    np.fill_diagonal(iou, 0.0)
    assert iou.max() <= 0.5


@pytest.mark.parametrize("mode", ["crop", "full"])
def test_tiny_model_box_threshold_one_finds_nothing(tiny_model: Path, frame: np.ndarray, mode: str) -> None:
    grounder = make_grounder(tiny_model, mode=mode, box_threshold=1.0)
    assert [len(d) for d in grounder.ground([frame], [TWO_DOGS])] == [0]


@pytest.mark.parametrize("mode", ["crop", "full"])
def test_no_anchors_no_model_call(
    tiny_model: Path, frame: np.ndarray, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grounder = make_grounder(tiny_model, mode=mode)

    def forbidden(pixels):
        raise AssertionError("the model ran for a frame without anchors")

    monkeypatch.setattr(grounder, "_forward", forbidden)
    results = grounder.ground([frame, frame], [sv.Detections.empty(), anchors()])
    assert [len(d) for d in results] == [0, 0]
    assert "anchor_index" in results[0].data
    assert grounder.ground([], []) == []


@pytest.mark.parametrize(("batch_size", "calls"), [(1, 3), (2, 2), (16, 1)])
def test_crops_of_all_frames_run_in_batches(
    tiny_model: Path, frame: np.ndarray, batch_size: int, calls: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    grounder = make_grounder(tiny_model, batch_size=batch_size)
    sizes: list[int] = []
    forward = grounder._forward

    def counting(pixels):
        sizes.append(len(pixels))
        return forward(pixels)

    monkeypatch.setattr(grounder, "_forward", counting)
    grounder.ground([frame, frame], [TWO_DOGS, TWO_DOGS[:1]])  # three crops
    assert len(sizes) == calls and sum(sizes) == 3


def test_off_image_anchor_gets_no_parts(tiny_model: Path, frame: np.ndarray) -> None:
    grounder = make_grounder(tiny_model)
    (parts,) = grounder.ground([frame], [anchors([10, 10, 200, 200], [400, 400, 500, 500])])
    assert set(parts.data["anchor_index"]) == {0}


def test_ground_rejects_mismatched_lengths(tiny_model: Path, frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2 images but 1 anchor"):
        make_grounder(tiny_model).ground([frame, frame], [TWO_DOGS])


def test_missing_model_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gdino"
    with pytest.raises(ModelUnavailableError, match="no-such-gdino") as info:
        GroundingDinoGrounder(GroundModelConfig(model=str(missing)), TargetConfig(), Runtime())
    assert info.value.stage == "ground" and info.value.looked == str(missing)


def test_folder_of_another_model_type_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-gdino"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelUnavailableError, match="not-a-gdino") as info:
        GroundingDinoGrounder(GroundModelConfig(model=str(folder)), TargetConfig(), Runtime())
    assert info.value.stage == "ground"


def test_missing_hub_id_offline_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = "streamlabel-tests/no-such-model"
    with pytest.raises(ModelUnavailableError, match=model) as info:
        GroundingDinoGrounder(GroundModelConfig(model=model), TargetConfig(), Runtime())
    assert "cache" in info.value.looked


def test_bfloat16_weights_give_float32_frame_boxes(tiny_model: Path, frame: np.ndarray) -> None:
    """The reduced-precision path ('auto' is bfloat16 on CUDA), run on the CPU with an explicit dtype."""
    settings = {"box_threshold": 0.0, "text_threshold": 0.0, "min_area_ratio": 0.0, "max_area_ratio": 1.0}
    target = TargetConfig(part=PartConfig(max_per_anchor=3, **settings))
    runtime = Runtime(device="cpu", dtype="bfloat16")
    grounder = GroundingDinoGrounder(GroundModelConfig(model=str(tiny_model), batch_size=2), target, runtime)
    assert grounder._model.dtype == torch.bfloat16
    parts = grounder.ground([frame], [TWO_DOGS])[0]
    assert len(parts) > 0
    assert parts.xyxy.dtype == np.float32 and parts.confidence.dtype == np.float32
    centre = parts.get_anchors_coordinates(sv.Position.CENTER)
    own = TWO_DOGS.xyxy[parts.data["anchor_index"]]
    assert ((centre >= own[:, :2]) & (centre <= own[:, 2:])).all()
    # same weights, less precision: with threshold 0 every query comes back. The two-stage query selection may
    # pick a few other proposals in bfloat16, so compare as sets: most float32 boxes have a bfloat16 twin.
    ((half_boxes, _, _),) = grounder._forward([frame])
    ((full_boxes, _, _),) = make_grounder(tiny_model)._forward([frame])
    assert half_boxes.dtype == np.float32 and half_boxes.shape == full_boxes.shape
    distance = np.abs(half_boxes[:, None] - full_boxes[None]).max(axis=2)  # (half, full) max corner offset
    assert (distance.min(axis=0) < 0.025 * frame.shape[1]).mean() >= 0.75
