"""Daily budgets on a synthetic day of novelty scores, and the infrared (night) test on synthetic and real images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamlabel.config import StoreConfig
from streamlabel.store.budget import DailyBudget, is_infrared, mean_saturation

DAY0 = datetime(2026, 11, 22, tzinfo=UTC)
STEP_S = 5.0  # one offer every 5 s: 17,280 a day
BURSTS_S = (2 * 3600, 10 * 3600, 15 * 3600, 22 * 3600)  # two at night, two by day, 8 frames each
BURST_FRAMES = 8


def is_night(t_s: float) -> bool:
    return t_s < 6 * 3600 or t_s >= 20 * 3600


def synthetic_day(budget: DailyBudget, day: datetime = DAY0, seed: int = 0) -> list[tuple[float, bool, bool]]:
    """Offer a day of mostly low novelty with four short bursts; ``(t_s, night, burst)`` of every kept frame."""
    rng = np.random.default_rng(seed)
    kept = []
    for i in range(int(86_400 / STEP_S)):
        t_s = i * STEP_S
        burst = any(start <= t_s < start + BURST_FRAMES * STEP_S for start in BURSTS_S)
        novelty = rng.uniform(4.0, 8.0) if burst else rng.uniform(1.0, 1.5)
        if budget.offer("cam", day + timedelta(seconds=t_s), novelty, is_night(t_s)):
            kept.append((t_s, is_night(t_s), burst))
    return kept


def test_a_day_keeps_at_most_the_budget_every_burst_and_both_day_and_night() -> None:
    budget = DailyBudget.from_config(StoreConfig(daily_budget=400, night_share=0.25))
    assert (budget.allowance(night=True), budget.allowance(night=False)) == (100, 300)
    kept = synthetic_day(budget)
    night = sum(1 for _, n, _ in kept if n)
    day = len(kept) - night
    assert len(kept) <= 400
    assert sum(1 for *_, burst in kept if burst) == len(BURSTS_S) * BURST_FRAMES
    assert 50 <= night <= 100 and 150 <= day <= 300
    # spread over the day, not spent in the first hours: every 4-hour block keeps something
    blocks = np.histogram([t for t, *_ in kept], bins=6, range=(0, 86_400))[0]
    assert blocks.min() > 10, blocks
    counts = budget.counts("cam")
    assert counts == {"kept": len(kept), "night_kept": night, "refused": int(86_400 / STEP_S) - len(kept)}


def test_each_day_has_its_own_allowance_and_no_budget_keeps_everything() -> None:
    budget = DailyBudget(daily_budget=60, night_share=0.0)  # one pool for day and night
    first = synthetic_day(budget)
    second = synthetic_day(budget, DAY0 + timedelta(days=1), seed=1)
    assert 30 <= len(first) <= 60 and 30 <= len(second) <= 60
    unlimited = DailyBudget(daily_budget=None)
    assert all(unlimited.offer("cam", DAY0 + timedelta(seconds=i), 0.1, i % 2 == 0) for i in range(500))
    assert unlimited.counts("cam") == {"kept": 500, "night_kept": 250, "refused": 0}


def test_a_spent_pool_refuses_even_the_most_novel_frame_and_streams_are_separate() -> None:
    budget = DailyBudget(daily_budget=3, night_share=0.0)
    at = DAY0 + timedelta(hours=23, minutes=59)  # end of the day: the rest of the allowance goes on what comes
    decisions = [budget.offer("cam", at + timedelta(seconds=i), 1.0 + i, False) for i in range(5)]
    assert decisions == [True, True, True, False, False]
    assert budget.offer("other", at, 0.5, False)
    assert budget.counts("cam")["refused"] == 2 and budget.counts("other")["kept"] == 1


def test_a_pool_without_allowance_refuses_even_a_novel_frame() -> None:
    budget = DailyBudget(daily_budget=10, night_share=1.0)  # everything for night
    assert budget.allowance(night=False) == 0
    assert not budget.offer("cam", DAY0 + timedelta(hours=12), 9.0, night=False)
    assert budget.offer("cam", DAY0 + timedelta(hours=1), 9.0, night=True)


def gray_and_colour() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    lum = cv2.resize(rng.integers(20, 230, (12, 16)).astype(np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    gray = np.repeat(lum[..., None], 3, axis=2)
    colour = cv2.resize(rng.integers(0, 255, (12, 16, 3)).astype(np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    return gray, colour


def jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_infrared_is_a_near_gray_image() -> None:
    gray, colour = gray_and_colour()
    assert is_infrared(gray) and is_infrared(jpeg_roundtrip(gray)) and is_infrared(gray[..., 0])
    assert not is_infrared(colour)
    assert mean_saturation(gray) == 0.0 and mean_saturation(colour) > 60
    tinted = np.clip(gray.astype(int) + np.array([6, 0, 8]), 0, 255).astype(np.uint8)  # a slight purple IR cast
    assert is_infrared(tinted, max_saturation=40) and not is_infrared(tinted, max_saturation=1)


@pytest.mark.assets
@pytest.mark.parametrize("name", ["darknet_dog_bicycle_truck.jpg", "gsam2_cat_dog.jpeg"])
def test_a_real_photo_is_day_and_its_grayscale_is_night(assets: Path, name: str) -> None:
    bgr = cv2.imread(str(assets / "images" / name), cv2.IMREAD_COLOR)
    assert bgr is not None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert not is_infrared(rgb)
    night = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert is_infrared(jpeg_roundtrip(night))
