"""Re-rendering a stored frame after a decision: from the unpainted copy, under the intent, crash-safe both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import pytest

from streamlabel.store import DatasetStore
from streamlabel.store.check import check_store
from streamlabel.store.staging import INTENT_FILE, Staging
from tests.store.synthetic import CONFIG_HASH, make_result, new_store


def two_part_frame(root: Path) -> tuple[DatasetStore, str, list[int]]:
    """A store with one frame: part 0 accepted, part 1 in review (painted out of the dataset copy)."""
    store = new_store(root)
    res = make_result("cam", 0, ["accepted", "review"], size=(96, 256), part_width=0.05)
    store.write(res, CONFIG_HASH)
    ids = [r["id"] for r in store.manifest.query("SELECT id FROM labels ORDER BY id")]
    return store, res.frame.frame_id, ids


def kill(*args: object, **kwargs: object) -> NoReturn:
    """Stands for a SIGKILL at the patched step: nothing after it runs."""
    raise KeyboardInterrupt("killed")


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".jpg", ".txt")}


def test_a_person_accepting_the_review_part_renders_the_dataset_copy_again(tmp_path: Path) -> None:
    store, fid, ids = two_part_frame(tmp_path)
    first = store.manifest.frame(fid)
    original = (tmp_path / first["hold_image"]).read_bytes()
    assert (tmp_path / first["image"]).read_bytes() != original  # painted
    stored = store.render_dataset_copy(fid, {ids[1]: {"status": "accepted"}})
    assert stored.split == "dataset" and stored.hold is None and stored.labels == 2
    assert stored.image.read_bytes() == original  # nothing left to paint: the original pixels, byte for byte
    assert len(stored.label.read_text().splitlines()) == 2
    assert files(tmp_path) == {first["image"], first["label"]}  # the review copy is gone
    assert [r["status"] for r in store.manifest.labels_of(fid)] == ["accepted", "accepted"]
    assert store.manifest.frame(fid)["rev"] == 1 and not (tmp_path / INTENT_FILE).exists()
    assert store.manifest.outbox_depth() == 2  # no event: a person's decision publishes its own
    store.close()
    assert check_store(tmp_path) == []


def test_a_person_rejecting_the_only_accepted_part_takes_the_frame_out_of_the_dataset(tmp_path: Path) -> None:
    store, fid, ids = two_part_frame(tmp_path)
    stored = store.render_dataset_copy(fid, {ids[0]: {"status": "rejected", "rejection": "not_target"}})
    assert stored.split == "review" and stored.hold is None
    assert files(tmp_path) == {str(stored.image.relative_to(tmp_path)), str(stored.label.relative_to(tmp_path))}
    assert len(stored.label.read_text().splitlines()) == 1
    store.close()
    assert check_store(tmp_path) == []


def test_render_of_an_unknown_frame_names_it(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with pytest.raises(KeyError, match="nope"):
        store.render_dataset_copy("nope")
    store.close()


def test_a_crash_before_the_commit_leaves_the_frame_as_it_was(tmp_path: Path, monkeypatch) -> None:
    store, fid, ids = two_part_frame(tmp_path)
    before = {rel: (tmp_path / rel).read_bytes() for rel in files(tmp_path)}
    monkeypatch.setattr(store.manifest, "update_frame", kill)
    with pytest.raises(KeyboardInterrupt):
        store.render_dataset_copy(fid, {ids[1]: {"status": "accepted"}})
    assert {rel: (tmp_path / rel).read_bytes() for rel in files(tmp_path)} == before
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no staged file, no intent
    store.close()
    assert check_store(tmp_path) == []


@pytest.mark.parametrize("committed", [False, True])
def test_opening_the_store_finishes_or_undoes_a_render_a_kill_cut_short(
    tmp_path: Path, monkeypatch, committed: bool
) -> None:
    store, fid, ids = two_part_frame(tmp_path)
    before = {rel: (tmp_path / rel).read_bytes() for rel in files(tmp_path)}
    if committed:  # killed after the commit, before the staged files were renamed
        monkeypatch.setattr(Staging, "_roll_forward", kill)
    else:  # killed before the commit: nothing cleans up
        monkeypatch.setattr(store.manifest, "update_frame", kill)
        monkeypatch.setattr(Staging, "_roll_back", lambda *a: [])
    with pytest.raises(KeyboardInterrupt):
        store.render_dataset_copy(fid, {ids[1]: {"status": "accepted"}})
    store.close()
    assert (tmp_path / INTENT_FILE).is_file() and check_store(tmp_path) != []
    monkeypatch.undo()
    reopened = DatasetStore(tmp_path, ["eye"])
    frame = reopened.manifest.frame(fid)
    if committed:
        assert frame["hold"] is None and len((tmp_path / frame["label"]).read_text().splitlines()) == 2
        assert files(tmp_path) == {frame["image"], frame["label"]}
    else:
        assert frame["hold"] == "review" and frame["rev"] == 0
        assert {rel: (tmp_path / rel).read_bytes() for rel in files(tmp_path)} == before
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]
    reopened.close()
    assert check_store(tmp_path) == []


def test_a_write_cut_short_is_undone_on_open(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    res = make_result("cam", 7, ["accepted"])
    image_rel, label_rel = store.relpaths(res, "dataset")
    (tmp_path / INTENT_FILE).write_text(json.dumps({"frame_id": res.frame.frame_id, "files": [image_rel, label_rel]}))
    (tmp_path / image_rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / image_rel).write_bytes(b"jpg")  # killed after the image, before the label and the commit
    store.close()
    reopened = DatasetStore(tmp_path, ["eye"])
    assert reopened.recovered == [image_rel] and files(tmp_path) == set()
    reopened.close()
    assert check_store(tmp_path) == []
