"""Pending frames are judged again when the validator is back: moved with their events, never passed or dropped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from streamlabel.config.target import TargetConfig
from streamlabel.stages.base import Candidate, ValidatorUnavailableError, Verdict
from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.pending import PendingRetry
from streamlabel.store.staging import Staging
from tests.store.synthetic import CONFIG_HASH, make_result, new_store

CHECKS = TargetConfig().validation.checks  # the default checklist: part_visible is poor_label, ...


class Judge:
    """TEST FIXTURE: a validator that answers with fixed (passed, confidence), or is away.

    A failing verdict fails ``failing`` (a check of the default checklist).
    """

    def __init__(
        self, passed: bool = True, confidence: float = 0.95, away: bool = False, failing: str = "part_visible"
    ) -> None:
        self.passed, self.confidence, self.away, self.failing = passed, confidence, away, failing
        self.seen: list[Candidate] = []

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        if self.away:
            raise ValidatorUnavailableError("validator at http://127.0.0.1:1 did not answer")
        self.seen += items
        checks = {"anchor_visible": True, self.failing: self.passed}
        return [Verdict(self.passed, self.confidence, checks, "judged", "judge", 0.01, "stated")] * len(items)


def retry(store, judge: Judge) -> PendingRetry:
    return PendingRetry(store, judge, 0.8, "eye", CHECKS)


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
    report = retry(store, Judge(away=True)).retry_once()
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
    report = retry(store, judge).retry_once()
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
    retry(store, Judge(passed=False)).retry_once()
    assert splits(store) == {"rejected": 2}
    rows = store.manifest.query("SELECT image, label FROM frames")
    assert all(r["image"] is None and r["label"] is None for r in rows)
    assert {r["verdict_passed"] for r in store.manifest.query("SELECT verdict_passed FROM labels")} == {0}
    assert check_store(store.root) == []


def test_only_pending_parts_are_judged_again(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    store.write(make_result("cam", 0, ["accepted", "pending"]), CONFIG_HASH)
    judge = Judge(passed=True, confidence=0.99)
    retry(store, judge).retry_once()
    assert len(judge.seen) == 1
    assert splits(store) == {"dataset": 1}
    [label] = store.manifest.query("SELECT label FROM frames")
    assert len((store.root / label["label"]).read_text().splitlines()) == 2
    assert check_store(store.root) == []


def test_sweep_removes_files_a_crash_left_under_pending(tmp_path: Path) -> None:
    store = pending_store(tmp_path, n=1)
    retry(store, Judge()).retry_once()
    stale = store.root / "pending" / "images" / "cam" / "2026-11-22" / "stale.jpg"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"x")
    assert retry(store, Judge()).sweep() == [str(stale.relative_to(store.root))]
    assert check_store(store.root) == []


def test_a_flagged_mask_is_never_accepted_by_a_retry(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    store.write(make_result("cam", 0, ["pending", "pending"], flagged=[True, False]), CONFIG_HASH)
    retry(store, Judge(passed=True, confidence=0.99)).retry_once()
    rows = store.manifest.query("SELECT status, flagged, idx, hold_idx FROM labels ORDER BY id")
    assert [tuple(r) for r in rows] == [("review", 1, -1, 0), ("accepted", 0, 0, 1)]  # the flag survived
    [frame] = store.manifest.query("SELECT split, hold FROM frames")
    assert tuple(frame) == ("dataset", "review")  # the accepted part is in the dataset, the flagged one waits
    assert outbox_kinds(store) == ["label", "review"]
    assert check_store(store.root) == []


@pytest.mark.parametrize(("failing", "rejection"), [("part_visible", "poor_label"), ("mask_on_part", "not_target")])
def test_a_retry_records_what_the_failed_check_means(tmp_path: Path, failing: str, rejection: str) -> None:
    store = new_store(tmp_path / "store")
    store.write(make_result("cam", 0, ["accepted", "pending"]), CONFIG_HASH)
    retry(store, Judge(passed=False, failing=failing)).retry_once()
    rows = store.manifest.query("SELECT status, rejection FROM labels ORDER BY id")
    assert [tuple(r) for r in rows] == [("accepted", ""), ("rejected", rejection)]
    [frame] = store.manifest.query("SELECT split, hold, image FROM frames")
    assert (frame["split"], frame["hold"]) == ("dataset", None)
    assert check_store(store.root) == []


def test_an_accepted_part_waits_in_the_dataset_while_its_neighbour_is_pending(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    stored = store.write(make_result("cam", 0, ["accepted", "pending"]), CONFIG_HASH)
    assert stored.split == "dataset" and stored.hold == "pending" and stored.labels == 1
    assert retry(store, Judge(away=True)).pending_count() == 1
    report = retry(store, Judge(passed=True, confidence=0.9)).retry_once()
    assert report.moved == {"dataset": 1} and report.still_pending == 0
    [frame] = store.manifest.query("SELECT hold, label FROM frames")
    assert frame["hold"] is None and len((store.root / frame["label"]).read_text().splitlines()) == 2
    assert not (store.root / "pending").exists() or not list((store.root / "pending").rglob("*.*"))
    assert check_store(store.root) == []


def test_a_pending_frame_without_its_image_is_rejected_once_and_the_rest_are_judged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = pending_store(tmp_path, n=3)
    [first] = store.manifest.query("SELECT frame_id, image FROM frames ORDER BY time LIMIT 1")
    (store.root / first["image"]).unlink()
    report = retry(store, Judge()).retry_once()
    assert report.unreadable == 1 and report.judged == 2 and report.still_pending == 0
    assert report.moved == {"rejected": 1, "dataset": 2}
    rows = store.manifest.query("SELECT status, rejection, verdict_reason FROM labels WHERE frame_id = ?", (first[0],))
    assert {(r["status"], r["rejection"]) for r in rows} == {("rejected", "poor_label")}
    assert all("not judged" in r["verdict_reason"] and first["image"] in r["verdict_reason"] for r in rows)
    assert [r.levelname for r in caplog.records if first[0] in r.getMessage()] == ["WARNING"]
    second = retry(store, Judge()).retry_once()  # nothing left: the frame does not block or log again
    assert second.judged == 0 and second.unreadable == 0
    assert len([r for r in caplog.records if first[0] in r.getMessage()]) == 1
    assert check_store(store.root) == []


def test_a_retry_killed_before_its_commit_leaves_no_file_behind(tmp_path: Path, monkeypatch) -> None:
    store = pending_store(tmp_path, n=1)

    def kill(*args: object, **kwargs: object) -> NoReturn:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(store.manifest, "update_frame", kill)
    monkeypatch.setattr(Staging, "_roll_back", lambda *a: [])  # a kill: nothing cleans up in the process
    with pytest.raises(KeyboardInterrupt):
        retry(store, Judge()).retry_once()
    monkeypatch.undo()
    store.close()
    reopened = DatasetStore(store.root, ["eye"])  # the restart recovers: the frame is still pending, no orphan
    assert splits(reopened) == {"pending": 1}
    assert not list((store.root / "images").rglob("*.*")) and not list((store.root / "labels").rglob("*.*"))
    assert not [p for p in store.root.rglob(".*") if p.is_file()]
    assert retry(reopened, Judge()).retry_once().moved == {"dataset": 1}
    reopened.close()
    assert check_store(store.root) == []
