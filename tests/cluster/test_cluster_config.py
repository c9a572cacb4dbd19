"""The ``cluster:`` section and the frame transport, without a Ray cluster."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from streamlabel.config import Config
from streamlabel.frames import Frame

pytest.importorskip("ray")
from streamlabel.cluster.transport import PackedFrame, pack, payload_bytes, unpack


def test_no_cluster_section_means_the_single_process_daemon() -> None:
    assert Config.model_validate({}).cluster is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"address": "ray://head:10001"}, "Ray Client"),
        ({"address": "head"}, "HOST:PORT"),
        ({"address": "head:0"}, "HOST:PORT"),
        ({"labelers": 0}, "greater than or equal to 1"),
        ({"streams": {"a": {"resources": {"cam": 0}}}}, "must be > 0"),
        ({"transport": "png"}, "'array' or 'jpeg'"),
        ({"engine": "dask"}, "'ray'"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_bad_cluster_sections_are_refused_naming_the_value(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Config.model_validate({"cluster": section})


@pytest.mark.parametrize("address", ["local", "auto", "10.0.0.5:6379", "head.lan:6379"])
def test_good_addresses(address: str) -> None:
    cfg = Config.model_validate({"cluster": {"address": address, "streams": {"a": {"resources": {"cam": 0.01}}}}})
    assert cfg.cluster is not None and cfg.cluster.address == address


def frame(image: np.ndarray) -> Frame:
    return Frame("cam", 7, 1.4, datetime(2026, 1, 1, tzinfo=UTC), image, keyframe=True)


def test_array_transport_keeps_the_frame_as_is() -> None:
    f = frame(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    assert pack(f, "array") is f
    assert unpack(f) is f
    assert payload_bytes(f) == 48 * 64 * 3


def test_jpeg_transport_round_trips_metadata_and_nearly_the_pixels() -> None:
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    ramp[..., 0] = 200  # a colour, so a swapped channel order would show
    f = frame(ramp)
    packed = pack(f, "jpeg")
    assert isinstance(packed, PackedFrame)
    assert payload_bytes(packed) < payload_bytes(f)
    back = unpack(packed)
    assert (back.stream, back.seq, back.pts, back.time, back.keyframe) == (f.stream, f.seq, f.pts, f.time, True)
    assert back.frame_id == f.frame_id
    assert back.image.shape == f.image.shape and back.image.dtype == np.uint8
    assert np.abs(back.image.astype(int) - f.image.astype(int)).mean() < 3.0
