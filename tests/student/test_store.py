"""What the student leaves in the store: the ``disagreement`` column, review rows of the parts only it found
(``verdict_source`` student), the review queue putting high disagreement first, and the daemon's runner with a tiny
real student."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.daemon.runner import Runner
from streamlabel.frames import Frame
from streamlabel.pipeline import Labeler, Stages
from streamlabel.stages.base import Runtime
from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.review_queue import QueueFilter, ReviewQueue
from streamlabel.store.reviews import Decision, Reviews
from streamlabel.student import Student, load_student
from tests.fixtures.student import ScriptedFinder
from tests.scripted import CountingValidator, ScriptedDetector, ScriptedGrounder, ScriptedSegmenter, frame_image

DOG = [20.0, 30.0, 80.0, 80.0]  # ScriptedGrounder: eyes at [30, 40, 40, 50] and [50, 40, 60, 50]
FINDS = {
    0: [
        ([30.0, 40.0, 40.0, 50.0], 0.9),  # agrees with the first eye
        ([55.0, 40.0, 65.0, 50.0], 0.8),  # the second eye half off: disagreement 2/3
        ([62.0, 60.0, 72.0, 70.0], 0.7),  # only the student: disagreement 0.7
    ]
}


def labeled(store: DatasetStore, confidence: float) -> Labeler:
    cfg = Config.model_validate({"tracking": {"enabled": False, "novelty": {"enabled": False}}})
    student = Student(ScriptedFinder(FINDS), cfg.models.student, "eye", "student:scripted")  # type: ignore[arg-type]
    stages = Stages(
        ScriptedDetector({0: [DOG]}),
        ScriptedGrounder(),
        ScriptedSegmenter(),
        CountingValidator(confidence),  # type: ignore[arg-type]
        student,
    )
    labeler = Labeler(cfg, stages)
    (result,) = labeler.label([Frame("kitchen", 0, 0.0, datetime(2026, 1, 1, tzinfo=UTC), frame_image(0))])
    store.manifest.record_run("cfg", {}, stages.model_ids())
    assert store.write(result, "cfg") is not None
    return labeler


def test_label_rows_carry_disagreement_and_the_students_finds_are_marked(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "store", ["eye"])
    labeled(store, confidence=0.9)
    rows = store.manifest.query(
        "SELECT status, verdict_source, verdict_reason, disagreement, verdict_passed, polygon FROM labels ORDER BY id"
    )
    assert [(r["status"], r["verdict_source"]) for r in rows] == [
        ("accepted", "stated"),
        ("accepted", "stated"),
        ("review", "student"),
    ]
    assert rows[2]["verdict_reason"].startswith("found by the student only (confidence 0.70)")
    assert [r["disagreement"] for r in rows] == pytest.approx([0.0, 2 / 3, 0.7], abs=1e-6)
    assert rows[2]["verdict_passed"] is None  # nobody judged the student's find: a person decides
    assert rows[2]["polygon"].startswith("[[")
    models = store.manifest.query("SELECT models FROM runs")[0]["models"]
    assert '"student": "student:scripted"' in models  # provenance names the student
    store.close()
    assert check_store(tmp_path / "store") == []


def test_the_review_queue_puts_high_disagreement_first(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "store", ["eye"])
    labeled(store, confidence=0.5)  # every part below the review threshold: all three wait for a person
    ids = [r["id"] for r in store.manifest.query("SELECT id FROM labels ORDER BY id")]
    page, total = ReviewQueue(store).queue(QueueFilter(stream="kitchen"), limit=10)
    assert total == 3
    # equal confidences would list them by id; the student's disagreement reorders them
    assert [item.id for item in page] == [ids[2], ids[1], ids[0]]
    store.close()


def test_a_runner_labels_a_clip_with_a_tiny_student(tmp_path: Path, scene_clip, tiny_students) -> None:
    clip, _ = scene_clip  # 2 s at 10 fps, 320x240
    cfg = Config.model_validate(
        {
            "streams": {"cam": {"url": str(clip), "fps": 5, "queue_size": 32}},
            "models": {"batch_size": 2, "student": {"model": str(tiny_students["finding"]), "imgsz": 160}},
            "tracking": {"enabled": False, "novelty": {"enabled": False}},
            "store": {"path": str(tmp_path / "store")},
        }
    )
    student = load_student(cfg, Runtime())
    assert student is not None
    # a dog filling the frame in every frame (the clip's pixels are no script index), so the random student's finds
    # fall inside it and are offered
    everywhere = {i: [[0.0, 0.0, 320.0, 240.0]] for i in range(256)}
    stages = Stages(ScriptedDetector(everywhere), ScriptedGrounder(), ScriptedSegmenter(), CountingValidator(), student)
    store = DatasetStore(tmp_path / "store", ["eye"])
    runner = Runner(cfg, stages, store)  # type: ignore[arg-type]
    runner.start()
    deadline = time.monotonic() + 60
    while runner.readers["cam"].is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = runner.run_until_done()
    assert stats.frames == 10 and student.counts["frames"] == 10 and student.counts["errors"] == 0
    rows = store.manifest.query("SELECT verdict_source AS source, disagreement, status FROM labels")
    found = [r for r in rows if r["source"] == "student"]
    assert len(rows) - len(found) == 20  # two eyes per frame, each scored against the random student
    assert all(0.0 <= r["disagreement"] <= 1.0 for r in rows)
    assert all(r["status"] == "review" for r in found)
    assert len(found) == student.counts["offered"] > 0
    store.close()
    assert check_store(tmp_path / "store") == []


def test_a_person_accepting_a_students_find_puts_it_in_the_dataset(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "store", ["eye"])
    labeled(store, confidence=0.9)
    found = store.manifest.query("SELECT id, frame_id FROM labels WHERE verdict_source = 'student'")[0]
    frame = store.manifest.query("SELECT label FROM frames WHERE frame_id = ?", (found["frame_id"],))[0]
    assert len((store.root / frame["label"]).read_text().splitlines()) == 2  # the two accepted eyes only
    Reviews(store).decide(found["id"], Decision.ACCEPT, who="tester", expect="review")
    row = store.manifest.query("SELECT status, idx FROM labels WHERE id = ?", (found["id"],))[0]
    frame = store.manifest.query("SELECT label FROM frames WHERE frame_id = ?", (found["frame_id"],))[0]
    assert row["status"] == "accepted" and row["idx"] >= 0
    assert len((store.root / frame["label"]).read_text().splitlines()) == 3
    store.close()
    assert check_store(tmp_path / "store") == []
