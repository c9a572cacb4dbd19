"""privacy.people in the store: copies outside the dataset have people pixelated (blur) or are not stored (drop)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamlabel.config.privacy import PrivacyConfig
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.rows import decode_jpeg, encode_jpeg
from tests.store.synthetic import CONFIG_HASH, make_result


def store_with(root: Path, people: str) -> DatasetStore:
    store = DatasetStore(root, ["eye"], jpeg_quality=90, privacy=PrivacyConfig(people=people))
    store.manifest.record_run(CONFIG_HASH, {"test": True}, {})
    return store


def read(path: Path) -> np.ndarray:
    image = decode_jpeg(path.read_bytes())
    assert image is not None
    return image.astype(int)


def test_blur_pixelates_people_in_the_review_copy_and_nothing_else(tmp_path: Path) -> None:
    store = store_with(tmp_path / "s", "blur")
    result = make_result("cam", 1, ["accepted", "review"], people=1, size=(96, 128))
    stored = store.write(result, CONFIG_HASH)
    assert stored is not None
    frame = dict(store.manifest.query("SELECT * FROM frames")[0])
    assert frame["split"] == "dataset" and frame["hold"] == "review"
    original = decode_jpeg(encode_jpeg(result.frame.image, 90, "x"))
    assert original is not None
    review, dataset = read(tmp_path / "s" / frame["hold_image"]), read(tmp_path / "s" / frame["image"])
    person = (slice(0, 48), slice(0, 32))  # the synthetic person box [0, 0, w/4, h/2]
    outside = (slice(60, 96), slice(40, 128))
    assert np.abs(review[person] - original[person].astype(int)).mean() > 10  # pixelated
    assert np.abs(review[outside] - original[outside].astype(int)).mean() < 3  # as captured (JPEG noise)
    assert np.abs(dataset[person] - original[person].astype(int)).mean() < 3  # the dataset copy is not blurred
    assert check_store(tmp_path / "s") == []
    store.close()


def test_keep_writes_people_as_captured(tmp_path: Path) -> None:
    store = store_with(tmp_path / "s", "keep")
    result = make_result("cam", 1, ["review"], people=1)
    store.write(result, CONFIG_HASH)
    frame = dict(store.manifest.query("SELECT * FROM frames")[0])
    original = decode_jpeg(encode_jpeg(result.frame.image, 90, "x"))
    assert original is not None
    assert np.abs(read(tmp_path / "s" / frame["image"]) - original.astype(int)).mean() < 1
    store.close()


@pytest.mark.parametrize(("statuses", "copies"), [(["review"], 1), (["accepted"], 1), (["pending", "accepted"], 2)])
def test_drop_stores_nothing_of_a_frame_with_a_person(tmp_path: Path, statuses: list[str], copies: int) -> None:
    store = store_with(tmp_path / "s", "drop")
    assert store.write(make_result("cam", 1, statuses, people=1), CONFIG_HASH) is None
    assert store.write(make_result("cam", 2, statuses, people=0), CONFIG_HASH) is not None
    assert [r["seq"] for r in store.manifest.query("SELECT seq FROM frames")] == [2]
    assert store.private_dropped["cam"] == 1
    assert len(list((tmp_path / "s").rglob("*.jpg"))) == copies  # the frame without a person only
    store.close()


def test_blurred_boxes_are_blocks_of_one_colour(tmp_path: Path) -> None:
    """The pixelation itself leaves no detail finer than a block (docs/privacy.md)."""
    store = store_with(tmp_path / "s", "blur")
    result = make_result("cam", 1, ["review"], people=1, size=(96, 128))
    store.write(result, CONFIG_HASH)
    frame = dict(store.manifest.query("SELECT * FROM frames")[0])
    review = read(tmp_path / "s" / frame["image"]).astype(np.uint8)
    edges = cv2.Laplacian(cv2.cvtColor(review[4:40, 4:28], cv2.COLOR_RGB2GRAY), cv2.CV_64F)
    original = cv2.Laplacian(cv2.cvtColor(result.frame.image[4:40, 4:28], cv2.COLOR_RGB2GRAY), cv2.CV_64F)
    assert np.abs(edges).mean() < 0.5 * np.abs(original).mean()
    store.close()
