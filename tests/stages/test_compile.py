"""``models.compile``: torch.compile of SAM2's image encoder with the real inductor (about 10 s on a CPU).

The compiled segmenter must give the eager one's masks, and the compiler must really have run at load time
(dynamo's counters).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from streamlabel.bench.stages import fixed_anchors, synthetic_frames
from streamlabel.config import GroundModelConfig, SegmentModelConfig, TargetConfig
from streamlabel.stages.base import Runtime
from streamlabel.stages.compiling import MODES, compiled
from streamlabel.stages.ground import GroundingDinoGrounder
from streamlabel.stages.segment import Sam2Segmenter


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def test_off_returns_the_function_itself_and_modes_are_checked() -> None:
    def fn(x: int) -> int:
        return x

    assert compiled(fn, "off", "fn") is fn
    with pytest.raises(ValueError, match="'fast' is not one of off, default"):
        compiled(fn, "fast", "fn")
    assert MODES[0] == "off"


def test_compile_mode_is_a_checked_config_field() -> None:
    from pydantic import ValidationError

    from streamlabel.config import Config

    assert Config().models.compile == "off"
    with pytest.raises(ValidationError, match="compile"):
        Config.model_validate({"models": {"compile": "turbo"}})


@pytest.mark.slow
def test_compiled_sam2_encoder_gives_the_eager_masks(tiny_models) -> None:
    cfg = SegmentModelConfig(config=str(tiny_models.sam2_config), checkpoint=str(tiny_models.sam2_checkpoint))
    eager = Sam2Segmenter(cfg, TargetConfig(), Runtime("cpu", "float32"))
    before = _graphs()
    fast = Sam2Segmenter(cfg, TargetConfig(), Runtime("cpu", "float32", "default"))
    assert _graphs() > before  # the warm-up compiled at load time, before any frame
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (180, 240, 3), dtype=np.uint8) for _ in range(3)]
    parts = [_eyes([[60, 50, 90, 80], [120, 60, 150, 90]]), _eyes([[20, 20, 70, 60]]), _eyes([[100, 90, 160, 150]])]
    for want, got in zip(eager.segment(images, parts), fast.segment(images, parts), strict=True):
        assert len(got) == len(want) > 0
        agree = (got.mask == want.mask).mean(axis=(1, 2))
        assert (agree > 0.995).all(), agree
        np.testing.assert_allclose(got.data["mask_score"], want.data["mask_score"], atol=1e-3)


def test_grounding_is_left_eager(tiny_models) -> None:
    """Grounding DINO's crops vary in size, which a compile would chase; the grounder ignores models.compile."""
    cfg = GroundModelConfig(model=str(tiny_models.grounding_dino))
    before = _graphs()
    grounder = GroundingDinoGrounder(cfg, TargetConfig(), Runtime("cpu", "float32", "default"))
    grounder.ground(synthetic_frames(1), fixed_anchors(1))
    assert _graphs() == before


def _eyes(boxes: list[list[float]]) -> sv.Detections:
    n = len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32),
        confidence=np.full(n, 0.8, dtype=np.float32),
        class_id=np.zeros(n, dtype=int),
        data={"anchor_index": np.zeros(n, dtype=int), "class_name": np.array(["eye"] * n)},
    )


def test_tiny_models_fixture_has_the_paths_used_here(tiny_models) -> None:
    for path in (tiny_models.sam2_config, tiny_models.sam2_checkpoint, tiny_models.grounding_dino):
        assert Path(path).exists()
