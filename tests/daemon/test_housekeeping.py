"""The daemon's housekeeping thread: pending frames are judged once the validator is back; retention runs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlabel.config import Config
from streamlabel.daemon.housekeeping import Housekeeper
from streamlabel.store.check import check_store
from tests.store.synthetic import CONFIG_HASH, make_result, new_store
from tests.store.test_pending import Judge


def wait_for(predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def pending_frames(store) -> int:
    return int(store.manifest.query("SELECT COUNT(*) FROM frames WHERE split = 'pending'")[0][0])


def test_pending_frames_are_judged_when_the_validator_comes_back(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    for seq in range(3):
        store.write(make_result("cam", seq, ["pending"]), CONFIG_HASH)
    judge = Judge(away=True)
    woken = threading.Event()
    keeper = Housekeeper(Config(), store, judge, on_change=woken.set, retry_s=0.05)
    keeper.start()
    try:
        time.sleep(0.2)  # a few rounds while the validator is away: nothing may move
        assert pending_frames(store) == 3 and not woken.is_set()
        judge.away = False
        assert wait_for(lambda: pending_frames(store) == 0)
        assert woken.wait(10) and keeper.judged == 3
    finally:
        keeper.stop()
    assert check_store(store.root) == []


def test_retention_runs_when_a_limit_is_set(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    old = datetime.now(UTC) - timedelta(days=10)
    store.write(make_result("cam", 0, ["review"], when=old), CONFIG_HASH)
    store.manifest.mark_delivered(r["seq"] for r in store.manifest.outbox_pending())  # its event went out
    cfg = Config.model_validate({"store": {"max_age_days": 1}})
    keeper = Housekeeper(cfg, store, None, retry_s=0.05)
    keeper.start()
    try:
        assert wait_for(lambda: keeper.pruned_frames == 1)
    finally:
        keeper.stop()
    [row] = store.manifest.query("SELECT image FROM frames")
    assert row["image"] is None
    assert check_store(store.root) == []
