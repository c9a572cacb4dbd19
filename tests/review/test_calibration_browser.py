"""The calibration page in headless Chromium: the figures and the reliability diagram render (screenshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlabel.config import Config
from streamlabel.store import DatasetStore
from tests.review.test_browser import _page, browser, screens, serve  # noqa: F401 (fixtures)
from tests.review.test_calibration import known  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def test_calibration_page_shows_figures_and_diagram(browser, known: DatasetStore, screens: Path) -> None:  # noqa: F811
    cfg = Config.model_validate({"review": {"audit_fraction": 0.0}})
    for page in _page(browser, serve(known, cfg)):
        page.goto("/calibration")
        figures = page.locator("table.figures")
        assert "17/18" in figures.inner_text() and "0.820" in figures.inner_text()
        diagram = page.locator("img.reliability")
        diagram.wait_for()
        page.wait_for_function("document.querySelector('img.reliability').complete")
        assert page.evaluate("document.querySelector('img.reliability').naturalWidth") == 600
        page.screenshot(path=str(screens / "review-calibration.png"), full_page=True)
