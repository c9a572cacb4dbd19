"""Stage 3: SAM2 segmentation through the real sam2 backend with a tiny random-weight model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import torch

from streamlabel.config import SegmentModelConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.polygon import polygon_to_mask
from streamlabel.stages.segment import Sam2Segmenter
from streamlabel.tiny.sam2 import build_tiny_sam2

CPU = Runtime(device="cpu", dtype="float32")
SIZES = [(120, 160), (96, 128), (200, 150)]  # (H, W) of the test frames


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_sam2(tmp_path_factory.mktemp("tiny_sam2"))


@pytest.fixture(scope="module")
def segmenter(tiny_sam2: tuple[Path, Path]) -> Sam2Segmenter:
    """The default (crop mode) segmenter."""
    config, checkpoint = tiny_sam2
    cfg = SegmentModelConfig(config=str(config), checkpoint=str(checkpoint))
    return Sam2Segmenter(cfg, TargetConfig(), CPU)


@pytest.fixture(scope="module")
def full_segmenter(tiny_sam2: tuple[Path, Path]) -> Sam2Segmenter:
    config, checkpoint = tiny_sam2
    cfg = SegmentModelConfig(config=str(config), checkpoint=str(checkpoint), mode="full")
    return Sam2Segmenter(cfg, TargetConfig(), CPU)


def _image(hw: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def _parts(boxes: list[list[float]], anchor_index: list[int] | None = None) -> sv.Detections:
    """Grounder-style part Detections (full-frame boxes, class 0, anchor_index, class_name, phrase)."""
    n = len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
        confidence=np.linspace(0.9, 0.5, n, dtype=np.float32),
        class_id=np.zeros(n, dtype=int),
        data={
            "anchor_index": np.asarray(anchor_index if anchor_index is not None else range(n), dtype=int),
            "class_name": np.array(["eye"] * n),
            "phrase": np.array(["eye"] * n),
        },
    )


def _assert_segmenter_output(out: sv.Detections, parts: sv.Detections, hw: tuple[int, int]) -> None:
    """Shapes, dtypes and the row contract: kept rows are input rows, unchanged, with a usable mask."""
    n = len(out)
    assert n <= len(parts)
    assert out.mask is not None and out.mask.dtype == bool and out.mask.shape == (n, *hw)
    assert out.data["mask_score"].dtype == np.float32 and out.data["mask_score"].shape == (n,)
    assert ((out.data["mask_score"] >= 0) & (out.data["mask_score"] <= 1)).all()
    assert out.data["polygon"].dtype == object and out.data["polygon"].shape == (n,)
    assert set(out.data) == {*parts.data, "polygon", "mask_score"}
    for row in range(n):
        src = int(np.flatnonzero((parts.xyxy == out.xyxy[row]).all(axis=1))[0])
        assert out.data["anchor_index"][row] == parts.data["anchor_index"][src]
        assert out.confidence[row] == parts.confidence[src]
        assert out.mask[row].any()
        polygon = out.data["polygon"][row]
        assert polygon.dtype == np.float32 and polygon.ndim == 2 and polygon.shape[1] == 2
        assert len(polygon) >= 3
        assert (polygon >= 0).all() and (polygon[:, 0] <= hw[1] - 1).all() and (polygon[:, 1] <= hw[0] - 1).all()
        # the polygon outlines (part of) the mask it came from
        assert (polygon_to_mask(polygon, *hw) & out.mask[row]).any()


@pytest.mark.parametrize(
    "boxes_per_frame",
    [
        pytest.param([], id="no-frames"),
        pytest.param([[]], id="one-frame-no-parts"),
        pytest.param([[[10, 10, 60, 50]]], id="one-box"),
        pytest.param(
            [[[10, 10, 60, 50], [50, 40, 150, 110], [0, 0, 20, 20]], [], [[30, 60, 140, 190]]],
            id="frames-with-3-0-1-boxes",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["crop", "full"])
def test_segment_output_contract(
    segmenter: Sam2Segmenter, full_segmenter: Sam2Segmenter, mode: str, boxes_per_frame: list[list[list[float]]]
) -> None:
    images = [_image(SIZES[i], seed=i) for i in range(len(boxes_per_frame))]
    anchors = [7, 7, 6]  # the first two parts share an anchor (one crop), the third has its own
    parts = [_parts(boxes, anchor_index=anchors[: len(boxes)]) for boxes in boxes_per_frame]
    out = (segmenter if mode == "crop" else full_segmenter).segment(images, parts)
    assert len(out) == len(images)
    for frame_out, frame_parts, image in zip(out, parts, images, strict=True):
        _assert_segmenter_output(frame_out, frame_parts, image.shape[:2])


def test_segment_is_deterministic_and_leaves_input_alone(segmenter: Sam2Segmenter) -> None:
    image, parts = _image(SIZES[0], seed=3), _parts([[10, 10, 60, 50], [50, 40, 150, 110]])
    first = segmenter.segment([image], [parts])[0]
    second = segmenter.segment([image], [parts])[0]
    np.testing.assert_array_equal(first.mask, second.mask)
    np.testing.assert_array_equal(first.data["mask_score"], second.data["mask_score"])
    assert parts.mask is None and "polygon" not in parts.data


def test_segment_rejects_mismatched_lengths(segmenter: Sam2Segmenter) -> None:
    with pytest.raises(ValueError, match="2 images but 1"):
        segmenter.segment([_image(SIZES[0], 0), _image(SIZES[0], 1)], [_parts([[1, 1, 9, 9]])])


def test_empty_masks_are_dropped_and_the_rest_keep_their_rows(
    full_segmenter: Sam2Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Post-processing on known masks: row 1 comes back empty, row 2 is a blob with a speck and a small hole."""
    hw = (40, 50)
    masks = np.zeros((3, *hw), dtype=bool)
    masks[0, 5:15, 5:15] = True
    masks[2, 20:35, 20:45] = True
    masks[2, 26:28, 30:32] = False  # 4 px hole: filled (fill_holes_px 64)
    masks[2, 2:4, 2:4] = True  # 4 px speck: dropped (keep_largest_component)
    scores = np.array([0.9, 0.1, 0.7], dtype=np.float32)
    monkeypatch.setattr(full_segmenter, "_predict", lambda images, boxes: ([masks], [scores]))
    parts = _parts([[5, 5, 15, 15], [0, 0, 3, 3], [20, 20, 45, 35]], anchor_index=[4, 5, 6])

    out = full_segmenter.segment([_image(hw, 0)], [parts])[0]

    assert out.data["anchor_index"].tolist() == [4, 6]
    assert out.data["class_name"].tolist() == ["eye", "eye"]
    np.testing.assert_array_equal(out.data["mask_score"], np.array([0.9, 0.7], dtype=np.float32))
    expected_blob = np.zeros(hw, dtype=bool)
    expected_blob[20:35, 20:45] = True
    np.testing.assert_array_equal(out.mask[1], expected_blob)
    np.testing.assert_array_equal(out.data["polygon"][0], [[5, 5], [5, 14], [14, 14], [14, 5]])


def test_local_folder_loads_like_config_and_checkpoint(segmenter: Sam2Segmenter, tiny_sam2: tuple[Path, Path]) -> None:
    folder = tiny_sam2[0].parent
    from_folder = Sam2Segmenter(SegmentModelConfig(model=str(folder)), TargetConfig(), CPU)
    image, parts = _image(SIZES[1], seed=5), _parts([[10, 10, 90, 80]])
    a = segmenter.segment([image], [parts])[0]
    b = from_folder.segment([image], [parts])[0]
    assert from_folder.model_id == str(folder)
    np.testing.assert_array_equal(a.mask, b.mask)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param(
            {"checkpoint": "/nonexistent/sam2.pt", "config": "<tiny>"}, "/nonexistent/sam2.pt", id="missing-checkpoint"
        ),
        pytest.param(
            {"checkpoint": "<tiny>", "config": "configs/sam2.1/no_such.yaml"},
            "configs/sam2.1/no_such.yaml",
            id="unknown-packaged-config",
        ),
        pytest.param({"model": "nobody/no-such-sam2"}, "nobody/no-such-sam2", id="unknown-hub-id"),
        pytest.param({"model": "facebook/sam2.1-hiera-tiny"}, "facebook/sam2.1-hiera-tiny", id="hub-id-offline"),
    ],
)
def test_unavailable_model_raises_naming_it(
    tiny_sam2: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, str],
    named: str,
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    tiny = {"config": str(tiny_sam2[0]), "checkpoint": str(tiny_sam2[1])}
    cfg = SegmentModelConfig(**{k: tiny.get(k) if v == "<tiny>" else v for k, v in fields.items()})
    with pytest.raises(ModelUnavailableError, match="not available") as info:
        Sam2Segmenter(cfg, TargetConfig(), CPU)
    assert info.value.stage == "segment"
    assert info.value.model == named
    assert named in str(info.value)


def test_config_without_checkpoint_is_refused(tiny_sam2: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="set together"):
        Sam2Segmenter(SegmentModelConfig(config=str(tiny_sam2[0])), TargetConfig(), CPU)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_segment_on_cuda_with_autocast(tiny_sam2: tuple[Path, Path]) -> None:
    config, checkpoint = tiny_sam2
    cfg = SegmentModelConfig(config=str(config), checkpoint=str(checkpoint))
    gpu = Sam2Segmenter(cfg, TargetConfig(), Runtime(device="cuda", dtype="bfloat16"))
    images = [_image(SIZES[0], seed=0), _image(SIZES[2], seed=2)]
    parts = [_parts([[10, 10, 60, 50], [50, 40, 150, 110]]), _parts([[30, 60, 140, 190]])]
    for frame_out, frame_parts, image in zip(gpu.segment(images, parts), parts, images, strict=True):
        _assert_segmenter_output(frame_out, frame_parts, image.shape[:2])


def test_segment_under_bfloat16_autocast_matches_float32(
    tiny_sam2: tuple[Path, Path], segmenter: Sam2Segmenter
) -> None:
    """The reduced-precision path ('auto' is bfloat16 autocast on CUDA), run on the CPU with an explicit dtype."""
    config, checkpoint = tiny_sam2
    cfg = SegmentModelConfig(config=str(config), checkpoint=str(checkpoint))
    half = Sam2Segmenter(cfg, TargetConfig(), Runtime(device="cpu", dtype="bfloat16"))
    images = [_image(SIZES[0], seed=0), _image(SIZES[2], seed=2)]
    boxes = [[[10, 10, 60, 50], [50, 40, 150, 110]], [[30, 60, 140, 190]]]
    masks, scores = half._predict(images, [np.asarray(b, dtype=np.float32) for b in boxes])
    full_masks, full_scores = segmenter._predict(images, [np.asarray(b, dtype=np.float32) for b in boxes])
    for m, s, fm, fs, b, img in zip(masks, scores, full_masks, full_scores, boxes, images, strict=True):
        assert m.dtype == bool and m.shape == (len(b), *img.shape[:2])
        assert s.dtype == np.float32 and s.shape == (len(b),)
        agree = (m == fm).mean(axis=(1, 2))  # pixels whose inside/outside call is the same as in float32
        assert (agree > 0.9).all(), agree
        assert np.abs(s - fs).max() < 0.1
    outputs = half.segment(images, [_parts(b) for b in boxes])
    for frame_out, frame_boxes, image in zip(outputs, boxes, images, strict=True):
        _assert_segmenter_output(frame_out, _parts(frame_boxes), image.shape[:2])
