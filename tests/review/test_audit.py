"""Audit items: the stratified, deterministic choice, the audit queue, and decisions through the usual path."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.store import DatasetStore
from streamlabel.store.audit import Audits, frame_hash, stratum_of
from streamlabel.store.review_queue import ALL_STATUSES
from streamlabel.store.reviews import Decision, QueueFilter, Reviews
from tests.review.conftest import label_ids
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

AUDIT = QueueFilter(statuses=ALL_STATUSES, audit=True)


def write_frames(store: DatasetStore, stream: str, count: int, confidence: float, night: bool, start: int) -> None:
    """``count`` frames with one accepted part of ``confidence``; ``night`` makes their image grayscale (IR)."""
    for seq in range(start, start + count):
        res = make_result(stream, seq, ["accepted"], when=T0 + timedelta(seconds=seq))
        if night:
            gray = res.frame.image.mean(axis=2, keepdims=True).astype(np.uint8)
            res.frame.image[:] = np.repeat(gray, 3, axis=2)
        verdicts = res.parts.data["verdict"]
        verdicts[0] = replace(verdicts[0], confidence=confidence)
        store.write(res, CONFIG_HASH)


def chosen(store: DatasetStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for frame_id, stratum in store.manifest.query("SELECT frame_id, stratum FROM audits WHERE chosen = 1"):
        out.setdefault(stratum, []).append(frame_id)
    return out


def test_stratum_key_names_stream_light_and_confidence_bin() -> None:
    assert stratum_of("kitchen", False, 0.93) == "kitchen|day|0.8-1.0"
    assert stratum_of("kitchen", True, 1.0) == "kitchen|night|0.8-1.0"
    assert stratum_of("yard", False, 0.05) == "yard|day|0.0-0.2"
    assert stratum_of("yard", False, 0.6) == "yard|day|0.6-0.8"  # a bin holds its lower edge
    assert stratum_of("yard", True, None) == "yard|night|none"


def test_selection_takes_the_fraction_of_every_stratum_by_hash(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    plan = [("kitchen", 120, 0.95, False), ("kitchen", 30, 0.95, True), ("kitchen", 40, 0.5, False)]
    plan += [("yard", 25, 0.95, False)]
    start = 0
    for stream, count, conf, night in plan:
        write_frames(store, stream, count, conf, night, start)
        start += count
    audits = Audits(store.manifest, store.root, fraction=0.1)
    picked = audits.select()
    strata = Counter(r[0] for r in store.manifest.query("SELECT stratum FROM audits"))
    assert strata == {
        "kitchen|day|0.8-1.0": 120,
        "kitchen|night|0.8-1.0": 30,
        "kitchen|day|0.4-0.6": 40,
        "yard|day|0.8-1.0": 25,
    }
    got = chosen(store)
    assert {k: len(v) for k, v in got.items()} == {k: math.ceil(0.1 * n) for k, n in strata.items()}
    assert picked == sum(len(v) for v in got.values()) == 12 + 3 + 4 + 3
    for stratum, ids in got.items():  # the lowest hashes of the stratum: the same choice on any machine
        members = [r[0] for r in store.manifest.query("SELECT frame_id FROM audits WHERE stratum = ?", (stratum,))]
        assert sorted(ids, key=frame_hash) == sorted(members, key=frame_hash)[: len(ids)]
    assert audits.select() == 0  # chosen once: never twice
    write_frames(store, "yard", 10, 0.95, False, start)  # the stratum grows to 35: ceil(3.5) = 4
    assert audits.select() == 1
    assert set(got["yard|day|0.8-1.0"]) < set(chosen(store)["yard|day|0.8-1.0"])
    store.close()


def test_audit_items_enter_the_queue_whatever_their_status_and_leave_when_decided(
    store: DatasetStore, cfg: Config
) -> None:
    reviews = Reviews(store, cfg.target.validation.review_threshold)
    assert reviews.queue(AUDIT, 50) == ([], 0)  # nothing chosen yet
    Audits(store.manifest, store.root, fraction=1.0).select()
    items, total = reviews.queue(AUDIT, 50)
    all_ids = [  # a rejected frame without store.keep_rejected keeps no image: nothing to show
        int(r[0])
        for r in store.manifest.query(
            "SELECT l.id FROM labels l JOIN frames f USING (frame_id) WHERE coalesce(f.image, f.hold_image) IS NOT NULL"
        )
    ]
    assert len(all_ids) == 7 and label_ids(store, "rejected")[0] not in all_ids
    assert total == len(all_ids) and sorted(i.id for i in items) == sorted(all_ids)
    accepted = label_ids(store, "accepted")[0]
    row = reviews.decide(accepted, Decision.REJECT, "ann")  # an auto-accepted part: decided like any item
    assert row["previous_status"] == "accepted" and row["status"] == "rejected"
    assert accepted not in [i.id for i in reviews.queue(AUDIT, 50)[0]]
    reviews.undo(accepted, "ann")
    assert accepted in [i.id for i in reviews.queue(AUDIT, 50)[0]]
    assert store.manifest.query("SELECT status FROM labels WHERE id = ?", (accepted,))[0][0] == "accepted"


def test_audit_queue_page_lists_and_decides_audit_items(store: DatasetStore, cfg: Config) -> None:
    cfg = cfg.model_copy(update={"review": cfg.review.model_copy(update={"audit_fraction": 1.0})})
    client = TestClient(create_app(cfg, store))
    waiting = client.get("/?status=audit")  # a request never selects: it reads the audits table only
    assert "No audit frames chosen yet" in waiting.text and "0 frames considered" in waiting.text
    assert store.manifest.query("SELECT count(*) FROM audits")[0][0] == 0
    Audits(store.manifest, store.root, fraction=1.0).select()  # the daemon's housekeeping does this
    page = client.get("/?status=audit")
    assert page.status_code == 200
    accepted = label_ids(store, "accepted")
    assert all(f'data-id="{i}"' in page.text for i in accepted)
    token = {"X-CSRF-Token": client.app.state.guard.csrf_token}  # type: ignore[attr-defined]
    done = client.post(f"/items/{accepted[0]}/decide", data={"decision": "accept"}, headers=token)
    assert done.status_code in (200, 303), done.text
    assert f'data-id="{accepted[0]}"' not in client.get("/?status=audit").text
    rows = store.manifest.query("SELECT decision, previous_status FROM reviews WHERE label_id = ?", (accepted[0],))
    assert [tuple(r) for r in rows] == [("accept", "accepted")]


def test_audit_fraction_is_a_bounded_config_field() -> None:
    assert Config().review.audit_fraction == 0.02
    assert Config.model_validate({"review": {"audit_fraction": 0.5}}).review.audit_fraction == 0.5


def test_selection_in_batches_reaches_the_same_audit_and_says_when_it_is_done(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    write_frames(store, "kitchen", 25, 0.95, False, 0)
    audits = Audits(store.manifest, store.root, fraction=0.2, batch_frames=10)
    assert audits.catch_up() is True and store.manifest.query("SELECT count(*) FROM audits")[0][0] == 10
    assert audits.catch_up() is True  # a backlog is left: no waiting for refresh_s
    assert audits.catch_up() is False and store.manifest.query("SELECT count(*) FROM audits")[0][0] == 25
    assert sum(len(v) for v in chosen(store).values()) == math.ceil(0.2 * 25)
    assert audits.catch_up() is False and audits.refresh() == 0  # then at most once per refresh_s
    assert Audits(store.manifest, store.root, fraction=0.0).catch_up() is False  # off: never a backlog
    store.close()


def test_the_daemons_housekeeping_selects_audit_frames(store: DatasetStore, cfg: Config) -> None:
    from streamlabel.daemon.housekeeping import Housekeeper
    from tests.daemon.harness import wait_until

    cfg = cfg.model_copy(update={"review": cfg.review.model_copy(update={"audit_fraction": 1.0})})
    keeper = Housekeeper(cfg, store, None, retry_s=0.05)
    keeper.start()
    try:
        wait_until(lambda: chosen(store), "the housekeeper's audit selection", 10.0)
    finally:
        assert keeper.stop()
    assert sum(len(v) for v in chosen(store).values()) == 6  # every frame with an image (fraction 1)


def test_streamlabel_review_selects_once_at_start_and_the_daemons_page_never(store: DatasetStore, cfg: Config) -> None:
    from streamlabel.review import ReviewServer
    from streamlabel.review.server import review_server

    cfg = cfg.model_copy(update={"review": cfg.review.model_copy(update={"audit_fraction": 1.0})})
    daemon_page = review_server(cfg, store)
    assert daemon_page is not None and daemon_page.audit_thread is None
    server = ReviewServer(cfg, store, address="127.0.0.1:0")
    server.start()
    try:
        assert server.audit_thread is not None
        server.audit_thread.join(10.0)
        assert not server.audit_thread.is_alive()
    finally:
        server.stop()
    assert sum(len(v) for v in chosen(store).values()) == 6
