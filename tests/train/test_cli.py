"""``streamlabel train`` and ``streamlabel evaluate`` on a tiny store: the JSON, the promotion, the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.store.reviews import Decision
from tests.fixtures.train_store import audit, write_frame, write_train_store

TINY = {"model": "yolo11n-seg.yaml", "epochs": 1, "imgsz": 64, "batch": 4, "workers": 0}


def _config(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "streamlabel.yml"
    path.write_text(yaml.safe_dump({"store": {"path": str(root)}, "train": TINY, "review": {"audit_fraction": 0}}))
    return path


def _said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_train_json_promote_then_evaluate(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store")
    gold = [write_frame(store, "gold", seq, status) for seq, status in enumerate(["accepted", "review"])]
    audit(store, dict.fromkeys(gold, Decision.ACCEPT))
    store.close()
    config = _config(tmp_path, store.root)
    trained = CliRunner().invoke(app, ["train", "-c", str(config), "--json", "--promote"])
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["frames"]["train"] + result["frames"]["val"] == 16 and result["excluded"]["gold"] == 2
    assert Path(result["weights"]).is_file() and result["evaluation"]["set"] == "gold"
    # a random-init student finds nothing: it is not promoted (the first student must find something)
    assert result["promoted"] is ((result["evaluation"]["student"]["mask_map50_95"] or 0) > 0)

    evaluated = CliRunner().invoke(app, ["evaluate", "-c", str(config), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert report["student"]["model"] == result["run_id"] and report["set"] == "gold" and report["frames"] == 2
    assert (report["teacher"]["tp"], report["teacher"]["fn"]) == (1, 1)  # the review part people accepted

    listed = CliRunner().invoke(app, ["evaluate", "-c", str(config), "--runs", "--json"])
    rows = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [(r["run_id"], r["status"], r["promoted"]) for r in rows] == [(result["run_id"], "finished", 0)]
    table = CliRunner().invoke(app, ["evaluate", "-c", str(config)])
    assert table.exit_code == 0 and "mask mAP50-95" in _said(table) and "recall" in _said(table)
    missing = CliRunner().invoke(app, ["evaluate", "-c", str(config), "--model", "20990101T000000Z-none"])
    assert missing.exit_code == 3 and f"finished runs: {result['run_id']}" in _said(missing)


def test_train_failure_exits_non_zero_naming_the_fix(tmp_path: Path) -> None:
    store = write_train_store(tmp_path / "store", frames_per_stream=1, val_fraction=0.0)
    store.close()
    config = _config(tmp_path, store.root)
    failed = CliRunner().invoke(app, ["train", "-c", str(config)])
    assert failed.exit_code == 1 and "store.val_fraction" in _said(failed)
    refused = CliRunner().invoke(app, ["train", "-c", str(config), "--model", "absent.pt"])
    assert refused.exit_code == 3 and "nothing is downloaded" in _said(refused)
    nothing = CliRunner().invoke(app, ["evaluate", "-c", str(config)])
    assert nothing.exit_code == 3 and "no trained student yet" in _said(nothing)
    (tmp_path / "other").mkdir()
    no_store = _config(tmp_path / "other", tmp_path / "nowhere")
    absent = CliRunner().invoke(app, ["train", "-c", str(no_store)])
    assert absent.exit_code == 2 and "no manifest.sqlite" in _said(absent)
