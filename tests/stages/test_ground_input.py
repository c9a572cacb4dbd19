"""``models.ground.input_short_side_px``: the size Grounding DINO sees each crop at."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from streamlabel.bench.stages import fixed_anchors, synthetic_frames
from streamlabel.config import GroundModelConfig, PartConfig, TargetConfig
from streamlabel.stages.base import Runtime
from streamlabel.stages.ground import GroundingDinoGrounder, input_size
from streamlabel.tiny.gdino import IMAGE_SIZE


@pytest.mark.parametrize(
    ("short_side", "expected"),
    [
        (None, {}),  # the size saved with the model
        (800, {"size": {"shortest_edge": 800, "longest_edge": 1333}}),  # the published checkpoints' own
        (480, {"size": {"shortest_edge": 480, "longest_edge": 800}}),
    ],
)
def test_input_size(short_side: int | None, expected: dict) -> None:
    assert input_size(short_side) == expected


@pytest.mark.parametrize("bad", [32, 2000])
def test_out_of_bounds_size_names_the_key(bad: int) -> None:
    with pytest.raises(ValidationError, match="input_short_side_px"):
        GroundModelConfig(input_short_side_px=bad)


def _seen_sizes(grounder: GroundingDinoGrounder, images, anchors) -> list[tuple[int, int]]:
    """(H, W) of every pixel batch the model was given (a real forward pre-hook), and run the grounder."""
    seen: list[tuple[int, int]] = []

    def hook(_module, _args, kwargs):
        seen.append(tuple(kwargs["pixel_values"].shape[-2:]))

    handle = grounder._model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        grounder.ground(images, anchors)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("short_side", [None, 64, 96])
def test_the_model_sees_crops_at_the_configured_short_side(tiny_models, short_side: int | None) -> None:
    settings = {"box_threshold": 0.0, "text_threshold": 0.0, "min_area_ratio": 0.0, "max_area_ratio": 1.0}
    target = TargetConfig(part=PartConfig(max_per_anchor=3, **settings))
    cfg = GroundModelConfig(model=str(tiny_models.grounding_dino), input_short_side_px=short_side)
    grounder = GroundingDinoGrounder(cfg, target, Runtime())
    images, anchors = synthetic_frames(1), fixed_anchors(1)
    (size,) = _seen_sizes(grounder, images, anchors)
    want = IMAGE_SIZE["shortest_edge"] if short_side is None else short_side
    assert min(size) == want  # one crop per batch: no padding, its short side is the configured one
    (parts,) = grounder.ground(images, anchors)
    assert len(parts) > 0  # boxes still come back in frame pixels, inside the dog
    centre = (parts.xyxy[:, :2] + parts.xyxy[:, 2:]) / 2
    dog = anchors[0].xyxy[0]
    assert ((centre >= dog[:2]) & (centre <= dog[2:])).all()
    assert parts.xyxy.max() <= max(images[0].shape) and np.isfinite(parts.xyxy).all()
