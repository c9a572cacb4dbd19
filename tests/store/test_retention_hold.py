"""Retention and the review copy kept beside a dataset copy: pruned like a review frame, the dataset copy stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlabel.config import Config
from streamlabel.store.check import check_store
from streamlabel.store.retention import prune, store_bytes
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store


def test_age_limit_prunes_the_review_copy_and_keeps_the_dataset_copy(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    old = store.write(make_result("cam", 0, ["accepted", "review"], when=T0), CONFIG_HASH)
    new = store.write(make_result("cam", 1, ["accepted", "review"], when=T0 + timedelta(days=9)), CONFIG_HASH)
    with store.manifest.transaction() as db:
        db.execute("UPDATE outbox SET delivered = '2026-12-01T00:00:00+00:00'")
    cfg = Config.model_validate({"store": {"max_age_days": 5}})
    report = prune(store, cfg, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert not old.hold_image.exists() and not old.hold_label.exists()
    assert new.hold_image.is_file()  # younger than the limit
    assert report.frames.get("review") == 1 and old.image.is_file() is False  # the old dataset copy: step 3
    rows = {r["frame_id"]: r for r in store.manifest.query("SELECT * FROM frames")}
    assert rows[old.frame_id]["hold_image"] is None and rows[new.frame_id]["hold_image"] is not None
    kinds = [r["kind"] for r in store.manifest.query("SELECT kind FROM pruned ORDER BY id")]
    assert sorted(kinds) == ["frame", "hold"]
    store.close()
    assert check_store(tmp_path) == []


def test_size_limit_prunes_review_copies_before_any_dataset_copy(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    stored = [
        store.write(make_result("cam", k, ["accepted", "review"], when=T0 + timedelta(hours=k)), CONFIG_HASH)
        for k in range(3)
    ]
    with store.manifest.transaction() as db:
        db.execute("UPDATE outbox SET delivered = '2026-12-01T00:00:00+00:00'")
    one_hold = stored[0].hold_image.stat().st_size + stored[0].hold_label.stat().st_size
    store.manifest.query("PRAGMA wal_checkpoint(TRUNCATE)")  # as prune does first
    total = store_bytes(tmp_path)
    cfg = Config.model_validate({"store": {"max_gb": (total - one_hold / 2) / 1e9}})
    prune(store, cfg)
    gone = [not s.hold_image.exists() for s in stored]
    assert gone[0] and gone == sorted(gone, reverse=True)  # oldest first (the pruned rows take a little room too)
    assert all(s.image.is_file() for s in stored)  # no dataset copy while review copies were left to prune
    store.close()
    assert check_store(tmp_path) == []
