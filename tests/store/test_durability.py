"""store.durability: 'power' makes commits and renames reach the disk (synchronous=FULL, folder fsyncs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamlabel.bench.store import bench_store, synthetic_result
from streamlabel.store import DatasetStore


def fsynced_folders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the folders passed to os.fsync (the real fsync still runs)."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(path):
            seen.append(path)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


@pytest.mark.parametrize(("durability", "synchronous", "dir_syncs"), [("process", 1, False), ("power", 2, True)])
def test_durability_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str, synchronous: int, dir_syncs: bool
) -> None:
    store = DatasetStore(tmp_path / "s", ["eye"], durability=durability)
    store.manifest.record_run("c", {}, {})
    assert store.manifest.query("PRAGMA synchronous")[0][0] == synchronous  # 1 NORMAL, 2 FULL
    folders = fsynced_folders(monkeypatch)
    stored = store.write(synthetic_result(0, size=(96, 128)), "c")
    assert stored is not None and stored.image is not None and stored.image.is_file()
    image_folder = str(stored.image.parent.resolve())
    assert (image_folder in folders) is dir_syncs
    store.close()


def test_bench_store_reports_both_settings(tmp_path: Path) -> None:
    result = bench_store(frames=4, folder=tmp_path)
    assert set(result["settings"]) == {"process", "power"}
    assert all(s["frames_per_s"] > 0 for s in result["settings"].values())
    assert result["power_over_process_time"] > 0
    assert not list(tmp_path.iterdir())  # the scratch stores are gone
