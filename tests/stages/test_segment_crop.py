"""Crop mode of the segmenter: crop geometry, paste back, resolution gained (oracle) and the real tiny SAM2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import supervision as sv
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from streamlabel.bench.segment import OraclePredictor, bench_segment, oracle_segmenter, polygon_ious, scene
from streamlabel.cli import app
from streamlabel.config import SegmentModelConfig, TargetConfig
from streamlabel.frames import ANCHOR_INDEX_KEY
from streamlabel.stages.base import Runtime
from streamlabel.stages.segment import Sam2Segmenter
from streamlabel.stages.segment_crop import Crop, crop_box, paste_masks, plan_crops
from streamlabel.tiny.sam2 import build_tiny_sam2

HD = (1080, 1920)


def _parts(boxes: list[list[float]], anchors: list[int] | None) -> sv.Detections:
    n = len(boxes)
    data = {} if anchors is None else {ANCHOR_INDEX_KEY: np.asarray(anchors, dtype=int)}
    return sv.Detections(xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4), data=data)


# --------------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("boxes", "hw", "context", "min_side", "expected"),
    [
        pytest.param([[100, 100, 110, 110]], HD, 3.0, 64, (70, 70, 140, 140), id="context-3x-part"),
        pytest.param([[100, 100, 104, 104]], HD, 3.0, 64, (70, 70, 134, 134), id="grown-to-min-side"),
        pytest.param([[0, 0, 10, 10]], HD, 3.0, 64, (0, 0, 70, 70), id="shifted-in-at-top-left"),
        pytest.param([[150, 110, 160, 120]], (120, 160), 3.0, 64, (90, 50, 160, 120), id="shifted-in-at-bottom-right"),
        pytest.param([[10, 10, 20, 20]], (50, 80), 3.0, 64, (0, 0, 70, 50), id="cut-to-a-short-frame"),
        pytest.param(
            [[100, 100, 110, 110], [130, 104, 140, 114]], HD, 3.0, 64, (70, 57, 170, 157), id="union-of-two-parts"
        ),
        pytest.param([[10.2, 20.7, 15.9, 25.1]], HD, 0.0, 1, (10, 20, 16, 26), id="no-context-sub-pixel"),
    ],
)
def test_crop_box(
    boxes: list[list[float]],
    hw: tuple[int, int],
    context: float,
    min_side: float,
    expected: tuple[int, int, int, int],
) -> None:
    assert crop_box(np.asarray(boxes), hw, context, min_side) == expected


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(8, 1200),
    width=st.integers(8, 2000),
    x=st.floats(0, 1),
    y=st.floats(0, 1),
    side=st.floats(2, 60),
    context=st.floats(0.5, 6),
    min_side=st.floats(1, 400),
)
def test_crop_box_is_a_square_in_the_frame_holding_the_part(
    height: int, width: int, x: float, y: float, side: float, context: float, min_side: float
) -> None:
    side = min(side, height - 1, width - 1)
    x0, y0 = x * (width - side), y * (height - side)
    cx0, cy0, cx1, cy1 = crop_box(np.array([[x0, y0, x0 + side, y0 + side]]), (height, width), context, min_side)
    assert 0 <= cx0 < cx1 <= width and 0 <= cy0 < cy1 <= height
    assert cx0 <= np.floor(x0) and np.ceil(x0 + side) <= cx1  # the part is inside
    assert cy0 <= np.floor(y0) and np.ceil(y0 + side) <= cy1
    wanted = max(side * (1 + 2 * context), min_side)
    for length, limit in ((cx1 - cx0, width), (cy1 - cy0, height)):  # the wanted side in whole pixels, or the frame
        assert length == limit or wanted - 1e-6 <= length < wanted + 1 + 1e-6
    if cx1 - cx0 < width and cy1 - cy0 < height:
        assert cx1 - cx0 == cy1 - cy0  # square unless cut to the frame


def test_plan_crops_groups_parts_by_anchor() -> None:
    parts = [
        _parts([[10, 10, 20, 20], [300, 300, 310, 310], [30, 12, 40, 22]], anchors=[2, 5, 2]),
        _parts([], anchors=[]),
        _parts([[10, 10, 20, 20], [300, 300, 310, 310]], anchors=None),
    ]
    crops = plan_crops(parts, [HD, HD, HD], context=1.0, min_side_px=16)
    assert [(c.frame, c.rows.tolist()) for c in crops] == [(0, [0, 2]), (0, [1]), (2, [0, 1])]
    assert (crops[0].x0, crops[0].y0, crops[0].x1, crops[0].y1) == (0, 0, 50, 50)  # shifted in at the corner
    assert (crops[1].x0, crops[1].y0, crops[1].x1, crops[1].y1) == (290, 290, 320, 320)
    np.testing.assert_array_equal(crops[1].boxes_in_crop(parts[0].xyxy), [[10, 10, 20, 20]])
    image = np.arange(HD[0] * HD[1]).reshape(HD)
    np.testing.assert_array_equal(crops[1].cut(image), image[290:320, 290:320])


def test_plan_crops_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 part lists but 1 frame shapes"):
        plan_crops([_parts([], None), _parts([], None)], [HD], context=1.0, min_side_px=16)


def test_paste_masks_puts_each_crop_at_its_offset() -> None:
    crops = [Crop(0, np.array([2, 0]), 1, 2, 4, 4), Crop(1, np.array([0]), 0, 0, 2, 2)]
    first = np.zeros((2, 2, 3), dtype=bool)
    first[0, 0, 0] = True  # row 2, frame pixel (x=1, y=2)
    first[1, 1, 2] = True  # row 0, frame pixel (x=3, y=3)
    second = np.ones((1, 2, 2), dtype=bool)
    masks, scores = paste_masks(
        crops, [first, second], [np.array([0.2, 0.7]), np.array([0.9])], counts=[3, 1], shapes=[(5, 6), (3, 3)]
    )
    assert [m.shape for m in masks] == [(3, 5, 6), (1, 3, 3)]
    assert [tuple(map(int, np.argwhere(m)[0])) for m in masks[0] if m.any()] == [(3, 3), (2, 1)]
    assert masks[0].sum() == 2 and not masks[0][1].any()
    assert masks[1][0, :2, :2].all() and masks[1].sum() == 4
    np.testing.assert_array_equal(scores[0], np.array([0.7, 0.0, 0.2], dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(1, 2, 2\), expected \(2, 2, 3\)"):
        paste_masks(crops[:1], [second], [np.array([0.9])], counts=[3], shapes=[(5, 6)])


@pytest.mark.parametrize(
    "fields",
    [{"mode": "tiles"}, {"crop_max_upscale": 0.5}, {"crop_context": -1}, {"batch_size": 0}],
    ids=["unknown-mode", "upscale-below-1", "negative-context", "batch-0"],
)
def test_segment_config_bounds(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SegmentModelConfig(**fields)


# --------------------------------------------------------------------------------------------- resolution (oracle)


def test_crop_mode_gives_small_parts_the_detail_full_frames_lose() -> None:
    """Through the real segmenter path with a SAM2-resolution oracle: a 12 px eye is resolved only in crop mode."""
    result = bench_segment(sizes_px=(12, 32), frames=1, dogs=2, seed=1)
    small, large = result["sizes"]
    assert small["crop_dropped"] == 0 and large["crop_dropped"] == 0
    assert small["crop_iou"] >= small["ideal_iou"] - 0.05  # as good as a pixel polygon of the truth can be
    assert small["full_iou"] <= small["ideal_iou"] - 0.3  # two by one-and-a-half mask cells on a 1080p frame
    assert large["crop_iou"] >= large["ideal_iou"] - 0.03
    assert large["full_iou"] < large["crop_iou"]


@pytest.mark.parametrize(("mode", "expected_shapes"), [("crop", [(256, 256, 3)] * 2), ("full", [(*HD, 3)])])
def test_the_model_sees_one_crop_per_anchor(mode: str, expected_shapes: list[tuple[int, ...]]) -> None:
    segmenter = oracle_segmenter(mode)
    image, parts, ellipses = scene(12, dogs=2, rng=np.random.default_rng(0))
    out = segmenter.segment([image], [parts])[0]
    predictor = segmenter._predictor
    assert predictor.image_shapes == expected_shapes  # a 12 px pair of eyes: the 256 px crop of 4x upscale
    assert predictor.batch_sizes == [len(expected_shapes)]
    assert len(out) == 4 and min(polygon_ious(out, parts, ellipses)) > (0.75 if mode == "crop" else 0.2)


def test_crops_go_to_the_model_batch_size_at_a_time() -> None:
    image, parts, _ = scene(16, dogs=3, rng=np.random.default_rng(2))
    one = oracle_segmenter("crop", batch_size=1)
    two = oracle_segmenter("crop", batch_size=2)
    a, b = one.segment([image], [parts])[0], two.segment([image], [parts])[0]
    assert one._predictor.batch_sizes == [1, 1, 1] and two._predictor.batch_sizes == [2, 1]
    np.testing.assert_array_equal(a.mask, b.mask)


# --------------------------------------------------------------------------------------------- real tiny SAM2


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config, checkpoint = build_tiny_sam2(tmp_path_factory.mktemp("tiny_sam2_crop"))
    return {"config": str(config), "checkpoint": str(checkpoint)}


def _tiny(tiny_cfg: dict[str, str], **fields: object) -> Sam2Segmenter:
    return Sam2Segmenter(SegmentModelConfig(**tiny_cfg, **fields), TargetConfig(), Runtime("cpu", "float32"))


def test_tiny_sam2_crop_masks_move_with_the_part(tiny_cfg: dict[str, str]) -> None:
    """The same pixels around a part at two places in the frame give the same mask, moved (cut, boxes, paste)."""
    segmenter = _tiny(tiny_cfg)
    assert segmenter.min_crop_side_px == 64  # the tiny model's 256 px input, at most 4x
    frame = np.random.default_rng(4).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    dy, dx = 90, 150
    moved = np.roll(frame, (dy, dx), axis=(0, 1))
    boxes = [[100, 100, 120, 116], [130, 104, 146, 118]]
    parts = _parts(boxes, anchors=[0, 0])
    moved_parts = _parts([[x0 + dx, y0 + dy, x1 + dx, y1 + dy] for x0, y0, x1, y1 in boxes], anchors=[0, 0])
    here, there = segmenter.segment([frame, moved], [parts, moved_parts])
    assert len(here) == len(there) and len(here) > 0
    np.testing.assert_array_equal(np.roll(here.mask, (dy, dx), axis=(1, 2)), there.mask)
    np.testing.assert_array_equal(here.data["mask_score"], there.data["mask_score"])
    for a, b in zip(here.data["polygon"], there.data["polygon"], strict=True):
        np.testing.assert_array_equal(a + np.array([dx, dy], dtype=np.float32), b)
    crop = plan_crops([parts], [frame.shape], segmenter.cfg.crop_context, segmenter.min_crop_side_px)[0]
    outside = here.mask.copy()
    outside[:, crop.y0 : crop.y1, crop.x0 : crop.x1] = False
    assert not outside.any()


def test_tiny_sam2_crop_of_the_whole_frame_is_full_mode(tiny_cfg: dict[str, str]) -> None:
    frame = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    parts = _parts([[20, 30, 60, 70], [90, 20, 140, 60]], anchors=[3, 3])
    crop = _tiny(tiny_cfg, crop_context=50).segment([frame], [parts])[0]
    full = _tiny(tiny_cfg, mode="full").segment([frame], [parts])[0]
    assert len(full) > 0
    np.testing.assert_array_equal(crop.mask, full.mask)
    np.testing.assert_array_equal(crop.data["mask_score"], full.data["mask_score"])


def test_oracle_predictor_answers_in_sam2_shapes() -> None:
    predictor = OraclePredictor(image_size=64)
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    image[10:20, 10:30, 0] = 255
    predictor.set_image_batch([image])
    masks, scores, logits = predictor.predict_batch([np.array([[10, 10, 30, 20], [0, 0, 5, 5]], dtype=np.float32)])
    assert masks[0].shape == (2, 1, 30, 40) and scores[0].shape == (2, 1) and logits[0].shape == (2, 1, 16, 16)
    assert masks[0][0, 0, 12:18, 12:28].all() and not masks[0][0, 0, :8].any()
    assert not masks[0][1].any()  # nothing of the shape near the second box


def test_bench_segment_command_prints_json() -> None:
    result = CliRunner().invoke(app, ["bench", "segment", "--sizes", "10", "--frames", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])  # stdout only: logs go to stderr
    assert [row["size_px"] for row in figures["sizes"]] == [10.0]
    assert figures["sizes"][0]["crop_iou"] > figures["sizes"][0]["full_iou"]


def test_bench_segment_command_rejects_bad_sizes() -> None:
    result = CliRunner().invoke(app, ["bench", "segment", "--sizes", "ten"])
    assert result.exit_code != 0 and "sizes must be numbers" in result.output
