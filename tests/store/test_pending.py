"""Pending frames are judged again when the validator is back: moved with their events, never passed or dropped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from streamlabel.stages.base import Candidate, ValidatorUnavailableError, Verdict
from streamlabel.store.check import check_store
from streamlabel.store.pending import PendingRetry
from tests.store.synthetic import CONFIG_HASH, make_result, new_store


class Judge:
    """TEST FIXTURE: a validator that answers with fixed (passed, confidence), or is away."""

    def __init__(self, passed: bool = True, confidence: float = 0.95, away: bool = False) -> None:
        self.passed, self.confidence, self.away = passed, confidence, away
        self.seen: list[Candidate] = []

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        if self.away:
            raise ValidatorUnavailableError("validator at http://127.0.0.1:1 did not answer")
        self.seen += items
        return [Verdict(self.passed, self.confidence, {"open": self.passed}, "judged", "judge", 0.01, "stated")] * len(
            items
        )


def pending_store(tmp_path: Path, n: int = 3, keep_rejected: bool = False):
    store = new_store(tmp_path / "store", keep_rejected=keep_rejected)
    for seq in range(n):
        store.write(make_result("cam", seq, ["pending", "pending"]), CONFIG_HASH)
    return store


def splits(store) -> dict[str, int]:
    return {r["split"]: r["n"] for r in store.manifest.query("SELECT split, COUNT(*) AS n FROM frames GROUP BY split")}


def outbox_kinds(store) -> list[str]:
    return [r["kind"] for r in store.manifest.query("SELECT kind FROM outbox ORDER BY seq")]


def test_validator_still_away_changes_nothing(tmp_path: Path) -> None:
    store = pending_store(tmp_path)
    report = PendingRetry(store, Judge(away=True), 0.8, "eye").retry_once()
    assert report.judged == 0 and report.unavailable and report.still_pending == 3
    assert splits(store) == {"pending": 3} and outbox_kinds(store) == []
    assert check_store(store.root) == []


@pytest.mark.parametrize(
    ("passed", "confidence", "split", "kind"),
    [(True, 0.95, "dataset", "label"), (True, 0.5, "review", "review")],
)
def test_judged_frames_move_with_their_event(
    tmp_path: Path, passed: bool, confidence: float, split: str, kind: str
) -> None:
    store = pending_store(tmp_path)
    judge = Judge(passed, confidence)
    report = PendingRetry(store, judge, 0.8, "eye").retry_once()
    assert report.judged == 3 and report.still_pending == 0 and report.moved == {split: 3}
    assert splits(store) == {split: 3}
    assert outbox_kinds(store) == [kind] * 3  # one event per frame, as if judged the first time
    assert len(judge.seen) == 6 and all(c.part.mask is not None and c.part.mask.any() for c in judge.seen)
    statuses = {r["status"] for r in store.manifest.query("SELECT status FROM labels")}
    assert statuses == {"accepted" if split == "dataset" else "review"}
    assert not list((store.root / "pending").rglob("*.jpg"))  # nothing left behind
    assert check_store(store.root) == []


def test_rejected_frames_lose_their_files_unless_kept(tmp_path: Path) -> None:
    store = pending_store(tmp_path, n=2)
    PendingRetry(store, Judge(passed=False), 0.8, "eye").retry_once()
    assert splits(store) == {"rejected": 2}
    rows = store.manifest.query("SELECT image, label FROM frames")
    assert all(r["image"] is None and r["label"] is None for r in rows)
    assert {r["verdict_passed"] for r in store.manifest.query("SELECT verdict_passed FROM labels")} == {0}
    assert check_store(store.root) == []


def test_only_pending_parts_are_judged_again(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    store.write(make_result("cam", 0, ["accepted", "pending"]), CONFIG_HASH)
    judge = Judge(passed=True, confidence=0.99)
    PendingRetry(store, judge, 0.8, "eye").retry_once()
    assert len(judge.seen) == 1
    assert splits(store) == {"dataset": 1}
    [label] = store.manifest.query("SELECT label FROM frames")
    assert len((store.root / label["label"]).read_text().splitlines()) == 2
    assert check_store(store.root) == []


def test_sweep_removes_files_a_crash_left_under_pending(tmp_path: Path) -> None:
    store = pending_store(tmp_path, n=1)
    PendingRetry(store, Judge(), 0.8, "eye").retry_once()
    stale = store.root / "pending" / "images" / "cam" / "2026-11-22" / "stale.jpg"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"x")
    assert PendingRetry(store, Judge(), 0.8, "eye").sweep() == [str(stale.relative_to(store.root))]
    assert check_store(store.root) == []
