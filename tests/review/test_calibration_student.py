"""Parts only the student found, in the calibration: accepted ones are misses of the pipeline, rejected ones are
no decision on the validator (docs/student.md, docs/review.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.store import DatasetStore
from streamlabel.store.audit import Audits
from streamlabel.store.calibration import calibration
from streamlabel.store.reviews import Decision, Reviews
from tests.review.conftest import add_frame
from tests.store.synthetic import new_store


def student_find(store: DatasetStore, seq: int) -> int:
    """A frame whose one part only the student found: status review, no verdict, source student."""
    label_id = add_frame(store, seq, ["review"], 0.5)[0]
    store.manifest.query(
        "UPDATE labels SET verdict_source = 'student', verdict_confidence = NULL, verdict_passed = NULL, "
        "disagreement = 0.8 WHERE id = ?",
        (label_id,),
    )
    return label_id


@pytest.fixture
def decided(tmp_path: Path) -> Iterator[DatasetStore]:
    """Audit frames: one auto-accepted part (people agree), a student find accepted, one rejected. Outside the
    audit: an ordinary review item accepted, a student find rejected and one accepted."""
    store = new_store(tmp_path / "s")
    auto = add_frame(store, 0, ["accepted"], 0.9)[0]
    audit_found, audit_wrong = student_find(store, 1), student_find(store, 2)
    Audits(store.manifest, store.root, fraction=1.0).select()
    ordinary = add_frame(store, 3, ["review"], 0.6)[0]
    found_wrong, found = student_find(store, 4), student_find(store, 5)
    reviews = Reviews(store)
    for label_id, decision in (
        (auto, Decision.ACCEPT),
        (audit_found, Decision.ACCEPT),
        (audit_wrong, Decision.NOT_TARGET),
        (ordinary, Decision.ACCEPT),
        (found_wrong, Decision.REJECT),
        (found, Decision.ACCEPT),
    ):
        reviews.decide(label_id, decision, "ann")
    yield store
    store.close()


def test_an_accepted_student_find_is_a_miss_and_a_rejected_one_no_false_rejection(decided: DatasetStore) -> None:
    report = calibration(Audits(decided.manifest, decided.root, fraction=0.0))
    audit = report["audit"]
    assert audit["parts"] == 2  # the auto-accepted part and the accepted find; the rejected find is left out
    assert (audit["precision"]["successes"], audit["precision"]["trials"]) == (1, 1)
    assert (audit["recall"]["successes"], audit["recall"]["trials"]) == (1, 2)  # the find the pipeline missed
    ordinary = report["review_items"]
    assert ordinary["parts"] == 1  # only the review item with a verdict
    assert (ordinary["accepted_by_people"]["successes"], ordinary["accepted_by_people"]["trials"]) == (1, 1)
    finds = report["student_finds"]
    assert (finds["decided"], finds["in_audit"]) == (4, 2)
    assert (finds["accepted_by_people"]["successes"], finds["accepted_by_people"]["trials"]) == (2, 4)


def test_the_calibration_page_shows_the_student_finds(decided: DatasetStore) -> None:
    client = TestClient(create_app(Config.model_validate({"review": {"audit_fraction": 0.0}}), decided))
    text = " ".join(client.get("/calibration").text.split())
    assert '<p class="student-finds">4 decided parts; people accepted <b>50%</b>' in text
    assert "Recall of automatic acceptance</th><td><b>50%</b>" in text
