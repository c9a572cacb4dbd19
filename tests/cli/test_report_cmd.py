"""``streamlabel report dataset``: report.json, --json on stdout, readable PNG plots, and the failure cases."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from streamlabel.cli import app
from tests.fixtures.report_store import EXPECTED, write_report_store
from tests.store.synthetic import new_store

PLOTS = {
    "frames_per_stream",
    "frames_per_day",
    "day_night",
    "duplicates",
    "label_sizes",
    "queue_ages",
    "labels_per_track",
}


def config_for(tmp_path: Path, store: Path) -> Path:
    path = tmp_path / "streamlabel.yml"
    path.write_text(yaml.safe_dump({"store": {"path": str(store)}}))
    return path


def report(config: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["report", "dataset", "-c", str(config), "--out", str(out), *extra])
    return result.exit_code, result.stdout, result.stderr


def assert_readable_pngs(out: Path) -> None:
    assert {p.stem for p in out.glob("*.png")} == PLOTS
    for path in out.glob("*.png"):
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (495, 880, 3), path
        assert image.std() > 5, f"{path} is blank"


def test_json_on_stdout_equals_report_json_and_the_plots_are_written(tmp_path: Path) -> None:
    store = write_report_store(tmp_path / "store")
    code, stdout, stderr = report(config_for(tmp_path, store), tmp_path / "out", "--json")
    assert code == 0, stderr
    printed = json.loads(stdout)
    assert printed == json.loads((tmp_path / "out" / "report.json").read_text())
    for stream, expected in EXPECTED.items():
        assert printed["streams"][stream]["frames"] == expected["frames"]
        assert printed["streams"][stream]["distinct_frames"] == expected["distinct"]
        assert printed["day_night"][stream].get("night", 0) == expected["night"]
    assert printed["queues"]["review"]["frames"] == 2
    assert "wrote" in stderr and "7 plots" in stderr
    assert_readable_pngs(tmp_path / "out")
    assert (store / "report-cache.json").is_file()


def test_the_summary_table_without_json(tmp_path: Path) -> None:
    store = write_report_store(tmp_path / "store")
    code, stdout, stderr = report(config_for(tmp_path, store), tmp_path / "out")
    assert code == 0, stderr
    assert stdout == ""
    rows = {line.split("│")[1].strip(): line for line in stderr.splitlines() if line.count("│") >= 9}
    cam = [cell.strip() for cell in rows["cam"].split("│")[1:-1]]
    # stream, frames, dataset, review, pending, accepted, distinct, night, tracks
    assert cam == ["cam", "12", "10", "2", "1", "10", "5", "30%", "4"]


def test_an_empty_store_gives_plots_that_say_so(tmp_path: Path) -> None:
    new_store(tmp_path / "store").close()
    code, stdout, stderr = report(config_for(tmp_path, tmp_path / "store"), tmp_path / "out", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["totals"] == {"frames": 0, "labels": 0, "distinct_frames": 0}
    assert_readable_pngs(tmp_path / "out")


@pytest.mark.parametrize("what", ["no store", "bad option"])
def test_failures_exit_non_zero_and_say_why(tmp_path: Path, what: str) -> None:
    if what == "no store":
        code, _, stderr = report(config_for(tmp_path, tmp_path / "missing"), tmp_path / "out")
        flat = stderr.replace("\n", "")  # rich wraps long lines
        assert code == 1 and "manifest.sqlite is missing" in flat and str(tmp_path / "missing") in flat
        assert not (tmp_path / "out").exists()
    else:
        code, _, stderr = report(config_for(tmp_path, tmp_path / "missing"), tmp_path / "out", "--max-bits", "99")
        assert code == 2 and "--max-bits" in stderr
