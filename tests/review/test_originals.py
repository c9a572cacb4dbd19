"""Undo of a decision that painted out or dropped a frame's last unpainted copy (store/originals.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.retention import prune
from streamlabel.store.reviews import Decision, ReviewError, Reviews
from streamlabel.store.rows import decode_jpeg
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store


@pytest.fixture
def accepted_store(tmp_path: Path) -> DatasetStore:
    """Frames written by the pipeline: two accepted parts; one accepted part; an accepted and a review part."""
    store = new_store(tmp_path / "store")
    for seq, statuses in enumerate([["accepted", "accepted"], ["accepted"], ["accepted", "review"]]):
        store.write(make_result("cam", seq, statuses, when=T0, size=(120, 160)), CONFIG_HASH)
    return store


def files_of(store: DatasetStore, frame_id: str) -> dict[str, bytes]:
    """The bytes of every copy the frame's row names (image, label, hold, original)."""
    frame = store.manifest.frame(frame_id)
    assert frame is not None
    keys = ("image", "label", "hold_image", "hold_label", "original")
    return {k: (store.root / frame[k]).read_bytes() for k in keys if frame[k]}


def parts(store: DatasetStore, seq: int) -> tuple[str, list[int]]:
    frame_id = store.manifest.query("SELECT frame_id FROM frames WHERE seq = ?", (seq,))[0][0]
    return frame_id, [row["id"] for row in store.manifest.labels_of(frame_id)]


def test_reject_of_an_auto_accepted_part_then_undo_restores_the_files_byte_for_byte(
    accepted_store: DatasetStore,
) -> None:
    store, reviews = accepted_store, Reviews(accepted_store)
    frame_id, (first, _) = parts(store, 0)
    before = files_of(store, frame_id)
    assert "original" not in before  # the pipeline keeps none: the dataset copy is unpainted
    reviews.decide(first, Decision.REJECT, "ana", expect="accepted")
    painted = files_of(store, frame_id)
    assert painted["image"] != before["image"]  # the rejected part is painted out
    assert painted["original"] == before["image"] and len(painted["label"].splitlines()) == 1
    assert check_store(store.root) == []
    reviews.undo(first, "ana")
    after = files_of(store, frame_id)
    assert after == before  # image and label byte-identical, and the original gone
    assert not any((store.root / "originals").rglob("*.jpg"))
    assert check_store(store.root) == []


def test_reject_of_a_frames_only_part_keeps_an_original_and_undo_brings_the_frame_back(
    accepted_store: DatasetStore,
) -> None:
    store, reviews = accepted_store, Reviews(accepted_store)
    frame_id, (only,) = parts(store, 1)
    before = files_of(store, frame_id)
    reviews.decide(only, Decision.NOT_TARGET, "ana", expect="accepted")
    frame = store.manifest.frame(frame_id)
    assert frame["split"] == "rejected" and frame["image"] is None  # store.keep_rejected is off
    assert (store.root / frame["original"]).read_bytes() == before["image"]
    assert check_store(store.root) == []
    reviews.undo(only, "ana")
    assert files_of(store, frame_id) == before and check_store(store.root) == []


def test_reject_of_a_review_part_beside_an_accepted_one_then_undo_restores_its_review_copy(
    accepted_store: DatasetStore,
) -> None:
    store, reviews = accepted_store, Reviews(accepted_store)
    frame_id, (_, waiting) = parts(store, 2)
    before = files_of(store, frame_id)
    reviews.decide(waiting, Decision.REJECT, "ana")
    assert store.manifest.frame(frame_id)["hold_image"] is None
    assert files_of(store, frame_id)["original"] == before["hold_image"]
    reviews.undo(waiting, "ana")
    after = files_of(store, frame_id)
    assert after.keys() == before.keys() and check_store(store.root) == []
    for key in ("label", "hold_image", "hold_label"):
        assert after[key] == before[key], key
    # The painted dataset copy is painted again from the decoded review copy: a JPEG generation apart.
    painted_before, painted_after = (decode_jpeg(f["image"]).astype(int) for f in (before, after))
    assert abs(painted_after - painted_before).mean() < 6.0  # 3.3 measured on this noise texture


def test_the_pending_retry_keeps_no_original(accepted_store: DatasetStore) -> None:
    store = accepted_store
    frame_id, (first, _) = parts(store, 0)
    store.render_dataset_copy(frame_id, {first: {"status": "rejected", "rejection": "poor_label"}})
    assert store.manifest.frame(frame_id)["original"] is None and check_store(store.root) == []


def test_retention_prunes_the_original_and_undo_is_then_refused_cleanly(accepted_store: DatasetStore) -> None:
    store, reviews = accepted_store, Reviews(accepted_store)
    frame_id, (first, _) = parts(store, 0)
    reviews.decide(first, Decision.REJECT, "ana", expect="accepted")
    original = store.root / store.manifest.frame(frame_id)["original"]
    cfg = Config.model_validate({"store": {"max_age_days": 5}})
    report = prune(store, cfg, now=datetime(2026, 12, 20, tzinfo=UTC))
    assert report.frames.get("original") == 1 and not original.exists()
    assert store.manifest.frame(frame_id)["original"] is None and check_store(store.root) == []
    with pytest.raises(ReviewError, match="files are gone"):
        reviews.undo(first, "ana")
    assert reviews.item(first).status == "rejected" and check_store(store.root) == []
