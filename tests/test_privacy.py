"""Privacy: people pixelated (or the image dropped) outside the dataset, and review/pending copies expire."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import PrivacyConfig
from streamlabel.privacy import apply_privacy
from streamlabel.store.check import check_store
from streamlabel.store.manifest import Manifest
from streamlabel.store.privacy_retention import expire_held_copies
from streamlabel.store.retention import StoreHandle
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

H, W = 120, 160
PERSON = np.array([[40.0, 20.0, 80.0, 100.0]])


def noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def inside(boxes: np.ndarray, margin_share: float) -> np.ndarray:
    """H×W mask of the boxes grown by ``margin_share`` (what apply_privacy may change)."""
    mask = np.zeros((H, W), bool)
    for x1, y1, x2, y2 in boxes:
        dx, dy = (x2 - x1) * margin_share, (y2 - y1) * margin_share
        mask[max(int(y1 - dy), 0) : int(np.ceil(y2 + dy)), max(int(x1 - dx), 0) : int(np.ceil(x2 + dx))] = True
    return mask


@pytest.mark.parametrize("margin_share", [0.0, 0.1, 0.5])
def test_blur_changes_the_pixels_of_people_and_nothing_else(margin_share: float) -> None:
    image = noise()
    original = image.copy()
    boxes = np.vstack([PERSON, [[130.0, 90.0, 170.0, 140.0]]])  # the second spills past the corner
    out = apply_privacy(image, boxes, PrivacyConfig(people="blur", margin_share=margin_share))
    assert out is not None and out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(image, original)  # the caller's image is untouched
    region = inside(boxes, margin_share)
    changed = np.any(out != image, axis=2)
    assert not changed[~region].any()
    person = region & inside(PERSON, margin_share)
    assert changed[person].mean() > 0.9  # noise pixels become their block's mean
    # Blocks: at most `blocks` distinct colours per row of the person box (8 by default, pixelated, not noisy)
    row = out[60, 40:80]
    assert len(np.unique(row, axis=0)) <= 9


def test_blur_of_a_tiny_box_and_a_box_outside_the_image() -> None:
    image = noise(1)
    out = apply_privacy(image, [[10, 10, 13, 13], [500, 500, 600, 600]], PrivacyConfig(margin_share=0.0))
    assert out is not None
    assert np.any(out[10:13, 10:13] != image[10:13, 10:13])  # even 3 px lose their detail
    out[10:13, 10:13] = image[10:13, 10:13]
    assert np.array_equal(out, image)


def test_drop_returns_none_with_a_person_and_the_image_without() -> None:
    image = noise()
    cfg = PrivacyConfig(people="drop")
    assert apply_privacy(image, PERSON, cfg) is None
    assert apply_privacy(image, np.zeros((0, 4)), cfg) is image
    assert apply_privacy(image, [], cfg) is image


def test_keep_and_no_people_leave_the_image_as_captured() -> None:
    image = noise()
    assert apply_privacy(image, PERSON, PrivacyConfig(people="keep")) is image
    assert apply_privacy(image, np.zeros((0, 4)), PrivacyConfig(people="blur")) is image


def test_retention_removes_only_old_review_and_pending_copies(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store", keep_rejected=True)
    old, new = T0, T0 + timedelta(days=10)
    cases = {
        "old_review": (["review"], old),
        "old_pending": (["pending", "review"], old),
        "old_dataset_hold": (["accepted", "review"], old),  # dataset copy + review copy beside it
        "old_dataset": (["accepted"], old),
        "old_rejected": (["rejected"], old),
        "new_review": (["review"], new),
        "new_pending": (["pending"], new),
    }
    ids, stored = {}, {}
    for seq, (name, (statuses, when)) in enumerate(cases.items()):
        res = make_result("cam", seq, statuses, when=when, track_ids=list(range(len(statuses))))
        stored[name] = store.write(res, CONFIG_HASH)
        ids[name] = res.frame.frame_id
    assert stored["old_dataset_hold"].hold == "review" and stored["old_pending"].split == "pending"
    files_before = set((tmp_path / "store").rglob("*.jpg"))
    untouched = ("old_dataset", "old_rejected", "new_review", "new_pending")
    rows_before = {n: (store.manifest.frame(ids[n]), store.manifest.labels_of(ids[n])) for n in untouched}

    report = expire_held_copies(store, max_age_days=5, now=new + timedelta(hours=1))

    assert dict(report.frames) == {"review": 2, "pending": 1} and report.files == 6
    gone = {stored[n].image for n in ("old_review", "old_pending")} | {stored["old_dataset_hold"].hold_image}
    assert set((tmp_path / "store").rglob("*.jpg")) == files_before - gone
    frame = store.manifest.frame
    for name in ("old_review", "old_pending"):
        row = frame(ids[name])
        assert (row["split"], row["image"], row["label"]) == ("rejected", None, None)
        labels = store.manifest.labels_of(ids[name])
        assert {(r["status"], r["rejection"], r["idx"]) for r in labels} == {("rejected", "poor_label", -1)}
        assert all("expired" in r["verdict_reason"] for r in labels)
    hold = frame(ids["old_dataset_hold"])
    assert hold["split"] == "dataset" and hold["image"] and (tmp_path / "store" / hold["image"]).is_file()
    assert (hold["hold"], hold["hold_image"], hold["hold_label"]) == (None, None, None)
    labels = store.manifest.labels_of(ids["old_dataset_hold"])
    assert [(r["status"], r["rejection"]) for r in labels] == [("accepted", ""), ("rejected", "poor_label")]
    for name in untouched:
        assert (frame(ids[name]), store.manifest.labels_of(ids[name])) == rows_before[name]
    assert frame(ids["new_review"])["split"] == "review" and frame(ids["new_pending"])["split"] == "pending"
    pruned = store.manifest.query("SELECT kind, ref, split, reason, done FROM pruned")
    assert {tuple(r) for r in pruned} == {
        ("frame", ids["old_review"], "review", "review_age", 1),
        ("frame", ids["old_pending"], "pending", "review_age", 1),
        ("hold", ids["old_dataset_hold"], "review", "review_age", 1),
    }
    store.close()
    assert check_store(tmp_path / "store") == []
    # a second run (a separate process: only the manifest) finds nothing more
    manifest = Manifest(tmp_path / "store" / "manifest.sqlite")
    again = expire_held_copies(StoreHandle(tmp_path / "store", manifest), 5, now=new + timedelta(hours=2))
    manifest.close()
    assert again.files == 0 and not again.frames


def test_prune_applies_review_max_age_days(tmp_path: Path) -> None:
    """The daemon's housekeeping and ``streamlabel prune`` both go through ``retention.prune``."""
    from streamlabel.config import Config
    from streamlabel.store.retention import prune

    store = new_store(tmp_path / "store")
    old = make_result("cam", 0, ["review"], when=T0)
    new = make_result("cam", 1, ["review"], when=T0 + timedelta(days=10))
    store.write(old, CONFIG_HASH)
    store.write(new, CONFIG_HASH)
    cfg = Config.model_validate({"store": {"review_max_age_days": 5}})
    report = prune(store, cfg, now=T0 + timedelta(days=10, hours=1))
    assert report.frames == {"review copies (review_max_age_days)": 1} and report.freed > 0
    assert store.manifest.frame(old.frame.frame_id)["split"] == "rejected"
    assert store.manifest.frame(new.frame.frame_id)["split"] == "review"
    unset = prune(store, Config(), now=T0 + timedelta(days=30))
    assert unset.frames == {} and store.manifest.frame(new.frame.frame_id)["split"] == "review"
    store.close()
