"""The calibration page in headless Chromium, on a store audited as ``review.audit_fraction`` says: two streams,
day and night, confidences spread over the review threshold, and a person who accepts a part as often as a
slightly overconfident validator predicts. The figures shown match the decisions; the screenshot is the docs'."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.store import DatasetStore
from streamlabel.store.audit import Audits
from streamlabel.store.reviews import Decision, Reviews
from tests.review.conftest import open_page, serve
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

pytestmark = pytest.mark.slow

FRACTION = 0.1
FRAMES_PER_STREAM = 160


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[DatasetStore, dict[str, int]]]:
    """The store, and what the audit holds: parts, auto-accepted parts, and those people accepted."""
    store, rng = new_store(tmp_path / "store"), np.random.default_rng(15)
    for stream in ("kitchen", "porch"):
        for k in range(FRAMES_PER_STREAM):
            confidence = round(float(rng.uniform(0.4, 1.0)), 3)
            res = make_result(
                stream, k, ["accepted" if confidence >= 0.8 else "review"], when=T0 + timedelta(seconds=k)
            )
            if k % 4 == 0:  # a night (infrared) frame: grey
                res.frame.image[:] = res.frame.image.mean(axis=2, keepdims=True).astype(np.uint8)
            verdicts = res.parts.data["verdict"]
            verdicts[0] = replace(verdicts[0], confidence=confidence)
            store.write(res, CONFIG_HASH)
    Audits(store.manifest, store.root, FRACTION).select()
    chosen = store.manifest.query(
        "SELECT l.id, l.status, l.verdict_confidence FROM labels l JOIN audits a USING (frame_id) WHERE a.chosen = 1"
    )
    reviews, figures = Reviews(store), {"parts": 0, "auto": 0, "auto_right": 0}
    for row in chosen:
        right = rng.random() < row["verdict_confidence"] ** 1.5  # the validator is a little overconfident
        expect = row["status"]
        reviews.decide(row["id"], Decision.ACCEPT if right else Decision.REJECT, "ann", expect=expect)
        figures["parts"] += 1
        figures["auto"] += expect == "accepted"
        figures["auto_right"] += expect == "accepted" and right
    ordinary = store.manifest.query(  # a person also works through the queue: the biased sample, shown apart
        "SELECT id, verdict_confidence FROM labels WHERE status = 'review' ORDER BY id LIMIT 24"
    )
    for row in ordinary:
        right = rng.random() < row["verdict_confidence"] ** 1.5
        reviews.decide(row["id"], Decision.ACCEPT if right else Decision.REJECT, "ben", expect="review")
    yield store, figures
    store.close()


def test_calibration_page_shows_the_audits_figures_and_diagram(browser, audited, screens: Path) -> None:
    store, figures = audited
    cfg = Config.model_validate({"review": {"audit_fraction": FRACTION}, "daemon": {"metrics_address": None}})
    for page in open_page(browser, serve(store, cfg)):
        page.goto("/calibration")
        text = " ".join(page.locator("table.figures").inner_text().split())
        assert f"Audited parts {figures['parts']}" in text and figures["parts"] >= 24
        assert f"({figures['auto_right']}/{figures['auto']};" in text
        assert "a random 10% of the stored frames" in page.inner_text("section.calibration")
        assert "24 decided parts" in page.inner_text("section.calibration")
        strata = page.locator("table.bins").nth(1).inner_text()
        assert "kitchen|night|" in strata and "porch|day|0.8-1.0" in strata
        page.locator("img.reliability").wait_for()
        page.wait_for_function("document.querySelector('img.reliability').complete")
        assert page.evaluate("document.querySelector('img.reliability').naturalWidth") == 600
        assert re.search(r"Threshold for 99% precision", text)
        page.screenshot(path=str(screens / "review-calibration.png"), full_page=True)
