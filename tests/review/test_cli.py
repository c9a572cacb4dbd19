"""``streamlabel review`` and ``streamlabel bench review`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streamlabel.bench.review import bench_review
from streamlabel.cli import app


def test_review_without_a_store_names_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(f"store:\n  path: {tmp_path / 'nothing'}\n")
    result = CliRunner().invoke(app, ["review", "-c", str(config)])
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2
    assert "holds no store (no manifest.sqlite); pass --store" in text


def test_review_refuses_an_open_address_without_token(tmp_path: Path, store) -> None:
    config = tmp_path / "c.yml"
    config.write_text(f"store:\n  path: {store.root}\n")
    result = CliRunner().invoke(app, ["review", "-c", str(config), "--address", "0.0.0.0:0"])
    assert result.exit_code == 2 and "review.token is unset" in " ".join(result.output.split())


def test_bench_review_times_every_page() -> None:
    result = bench_review(items=300, repeats=2)
    assert result["items"] == 300 and 150 < result["open_items"] < 270
    for page in ("queue", "queue_failed_check", "queue_page_500", "item"):
        assert result[page]["median_ms"] > 0
    json.dumps(result)
