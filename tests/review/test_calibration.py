"""The validator measured: calibration figures from audit decisions, the page, the PNG and the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.store import DatasetStore
from streamlabel.store.audit import Audits
from streamlabel.store.calibration import calibration, plot_reliability, reliability, threshold_for, wilson
from streamlabel.store.reviews import Decision, Reviews
from tests.review.conftest import add_frame
from tests.store.synthetic import new_store

# 17/18 by the Wilson score method (z = 1.96), worked by hand: centre 0.86628, half-width 0.12385.
WILSON_17_18 = (0.74243, 0.99012)


def test_wilson_interval_matches_the_worked_example() -> None:
    low, high = wilson(17, 18)
    assert (round(low, 5), round(high, 5)) == WILSON_17_18
    assert wilson(0, 0) is None
    assert wilson(5, 5)[1] == 1.0 and wilson(0, 5)[0] == 0.0


def test_figures_of_a_store_with_known_decisions(known: DatasetStore) -> None:
    report = calibration(Audits(known.manifest, known.root, fraction=0.0), target_precision=0.99)
    audit = report["audit"]
    assert audit["parts"] == 20
    precision, recall = audit["precision"], audit["recall"]
    assert (precision["successes"], precision["trials"]) == (17, 18)
    assert precision["value"] == pytest.approx(17 / 18)
    assert tuple(round(v, 5) for v in precision["interval"]) == WILSON_17_18
    assert (recall["successes"], recall["trials"]) == (17, 18)  # people found 18 right labels, 17 auto-accepted
    dataset = audit["dataset_precision"]
    assert (dataset["by_people"], dataset["by_pipeline"]) == (19, 10)
    assert dataset["value"] == pytest.approx((19 + 10 * 17 / 18) / 29)
    assert dataset["interval"][0] == pytest.approx((19 + 10 * WILSON_17_18[0]) / 29, abs=1e-4)
    threshold = audit["threshold"]
    assert threshold["threshold"] == pytest.approx(0.82)  # above the one wrong acceptance at 0.81
    assert (threshold["precision"]["successes"], threshold["precision"]["trials"]) == (17, 17)
    assert threshold["recall"]["value"] == pytest.approx(17 / 18)
    bins = {round(r["low"], 1): r["accepted"] for r in audit["reliability"] if r["accepted"]["trials"]}
    assert {k: (v["successes"], v["trials"]) for k, v in bins.items()} == {
        0.6: (1, 1),
        0.7: (0, 1),
        0.8: (8, 9),
        0.9: (9, 9),
    }
    ordinary = report["review_items"]
    assert ordinary["parts"] == 2
    assert (ordinary["accepted_by_people"]["successes"], ordinary["accepted_by_people"]["trials"]) == (1, 2)


def test_an_audit_frame_counts_only_once_every_part_is_decided(tmp_path: Path) -> None:
    store = new_store(tmp_path / "s")
    first, second = add_frame(store, 0, ["accepted", "accepted"], 0.9)
    audits = Audits(store.manifest, store.root, fraction=1.0)
    audits.select()
    reviews = Reviews(store)
    reviews.decide(first, Decision.ACCEPT, "ann")
    assert audits.outcomes() == {"audit": [], "review": []}
    assert audits.progress()["kitchen|day|0.8-1.0"] == {"frames": 1, "chosen": 1, "done": 0}
    reviews.decide(second, Decision.NOT_TARGET, "ann")
    assert [p["truth"] for p in audits.outcomes()["audit"]] == [True, False]
    assert audits.progress()["kitchen|day|0.8-1.0"]["done"] == 1
    reviews.undo(first, "ann")  # undone: the frame is open again, and the part waits in the audit queue
    assert audits.outcomes()["audit"] == []
    store.close()


def test_threshold_is_none_when_no_cut_meets_the_target() -> None:
    parts = [{"confidence": 0.9, "truth": False}, {"confidence": 0.95, "truth": False}]
    assert threshold_for(parts, 0.99)["threshold"] is None


def test_calibration_page_and_plot_answer(known: DatasetStore) -> None:
    cfg = Config.model_validate({"review": {"audit_fraction": 0.0}})
    client = TestClient(create_app(cfg, known))
    page = client.get("/calibration")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "Precision of automatic acceptance</th><td><b>94%</b>" in text and "(17/18; 95 % 74%–99%)" in text
    assert "<b>0.820</b>" in text and "/calibration/reliability.png" in text
    png = client.get("/calibration/reliability.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and len(png.content) > 10_000
    assert client.get("/calibration?target=2").status_code == 400


def test_report_calibration_command_writes_json_and_png(known: DatasetStore, tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(f"store:\n  path: {known.root}\nreview:\n  audit_fraction: 0\n")
    out = Path(os.environ.get("REVIEW_SCREENSHOTS") or tmp_path / "out")
    args = ["report", "calibration", "-c", str(config), "--out", str(out), "--json", "--target-precision", "0.9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert report["audit"]["precision"]["successes"] == 17 and report["audit"]["threshold"]["threshold"] == 0.6
    assert json.loads((out / "calibration.json").read_text()) == report
    png = (out / "reliability.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_report_calibration_without_a_store_names_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(f"store:\n  path: {tmp_path / 'nothing'}\n")
    result = CliRunner().invoke(app, ["report", "calibration", "-c", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "holds no store" in " ".join(result.output.split())


def test_the_diagram_draws_a_bin_that_people_accepted_entirely(tmp_path: Path) -> None:
    """4 of 4 accepted: the Wilson bound is 0.9999999999999999, one rounding below the share (a negative bar)."""
    parts = [{"confidence": 0.9, "truth": True}] * 4 + [{"confidence": 0.5, "truth": False}] * 4
    report = {
        "audit": {"reliability": reliability(parts), "threshold": {"threshold": None, "target": 0.99}},
        "review_items": {"reliability": reliability(parts[:4])},
    }
    assert wilson(4, 4)[1] < 1.0  # the rounding this guards against
    assert plot_reliability(report, tmp_path).read_bytes().startswith(b"\x89PNG")
