"""Daily budgets: at most ``store.daily_budget`` frames per stream and UTC day, spent on the most novel ones.

Frames arrive one by one, so the budget decides online. Each stream-day has two pools: night (infrared frames,
``is_infrared``) gets ``store.night_share`` of the budget, day the rest; a pool never lends to the other, so a
camera that films both keeps both. Within a pool, the rule (``DailyBudget.offer``) is an online quantile bar:

1. the pool's first offer of the day is kept, and nothing is kept once the pool is spent;
2. the offers still to come today are estimated from the pool's rate since its first offer of the day:
   ``expected = offers / (t - t_first) × (end of the UTC day - t)``, ``t`` the frame's capture time;
3. the pool keeps the share ``p = allowance left / expected`` of what is still to come: a frame is kept when its
   novelty is above the ``1 - p`` quantile of every novelty the pool was offered today (everything, when
   ``p >= 1``). As the allowance runs low the bar rises toward the day's highest novelty, so a burst (a dog
   waking up, a new pose) still gets in while the hours of a sleeping dog do not use the budget up;
4. a novelty equal to the bar (ties: many frames kept only by the interval) is kept only while the pool is not
   ahead of an even pace over the rest of the day (``spent < allowance × e``, ``e`` the share of the day
   between the first offer and ``t``).

What the budget refused is counted per stream (``refused``). Counts restart with the process, so a restart in the
middle of a day spends that day's allowance again (the store's own per-day counts are in ``streamlabel report``).
"""

from __future__ import annotations

import bisect
import logging
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np

from streamlabel.config.service import StoreConfig

log = logging.getLogger(__name__)

DAY_S = 86_400.0
# A pause between two offers of a pool counts as at most this long when measuring its rate, so that the hours a
# pool sees nothing (night frames by day) do not make the rest of the day look quiet (the budget then spends early).
_MAX_GAP_S = 600.0
_SATURATION_SIDE_PX = 96  # images are sampled to this width before measuring saturation (the mean barely moves)


def mean_saturation(image: np.ndarray) -> float:
    """Mean HSV saturation (0-255) of an RGB uint8 image (a grayscale H×W image: 0)."""
    if image.ndim == 2 or image.shape[-1] == 1:
        return 0.0
    h, w = image.shape[:2]
    scale = min(1.0, _SATURATION_SIDE_PX / max(w, 1))
    size = (max(int(w * scale), 1), max(int(h * scale), 1))
    # Bilinear samples a grid of pixels: an unbiased estimate of the mean, 100× faster than INTER_AREA here.
    small = cv2.resize(np.ascontiguousarray(image[..., :3]), size, interpolation=cv2.INTER_LINEAR)
    return float(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2HSV)[..., 1].mean())


def is_infrared(image: np.ndarray, max_saturation: float = 12.0) -> bool:
    """Whether a frame is night (infrared) footage: near-grayscale, mean HSV saturation below ``max_saturation``.

    An IR-lit camera switches to monochrome, and JPEG chroma noise keeps such frames within a few units of 0,
    while daylight colour scenes sit far above 12 (``store.infrared_max_saturation``).
    """
    return mean_saturation(image) < max_saturation


@dataclass
class _Pool:
    """One stream-day-period's allowance and every novelty it was offered (sorted)."""

    allowance: int
    first_s: float  # seconds into the UTC day of the pool's first offer
    spent: int = 0
    last_s: float = 0.0  # seconds into the day of the latest offer
    active_s: float = 0.0  # seconds between offers, each gap capped at _MAX_GAP_S
    scores: array[float] = field(default_factory=lambda: array("d"))  # 8 bytes an offer: 1.4 MB a day at 2 fps


class DailyBudget:
    """The per-stream daily budget of stored frames, split between day and night (module docstring: the rule).

    ``kept`` and ``refused`` count offers per stream since the budget was built. Not thread-safe: offer a
    stream's frames in capture order from one thread.
    """

    def __init__(self, daily_budget: int | None, night_share: float = 0.3) -> None:
        self.daily_budget = daily_budget
        self.night_share = night_share
        self.kept: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.night_kept: Counter[str] = Counter()
        self._pools: dict[tuple[str, str, bool], _Pool] = {}

    @classmethod
    def from_config(cls, cfg: StoreConfig) -> DailyBudget:
        """The budget of ``store.daily_budget`` and ``store.night_share``."""
        return cls(cfg.daily_budget, cfg.night_share)

    def allowance(self, night: bool) -> int | None:
        """Frames a stream may keep per day in the night or day pool (None: no limit)."""
        if self.daily_budget is None:
            return None
        night_allowance = round(self.daily_budget * self.night_share)
        if self.night_share == 0:
            return self.daily_budget
        return night_allowance if night else self.daily_budget - night_allowance

    def offer(self, stream: str, when: datetime, novelty: float, night: bool) -> bool:
        """Whether a frame of ``stream`` captured at ``when`` (aware, any zone) with ``novelty`` is stored.

        ``novelty`` is the frame's largest part novelty (``NoveltyGate``); ``night`` is ``is_infrared`` of it.
        """
        keep = self.daily_budget is None or self._decide(stream, when.astimezone(UTC), novelty, night)
        if keep:
            self.kept[stream] += 1
            self.night_kept[stream] += int(night)
        else:
            self.refused[stream] += 1
        return keep

    def _decide(self, stream: str, when: datetime, novelty: float, night: bool) -> bool:
        t_s = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6
        pool = self._pool(stream, f"{when:%Y-%m-%d}", night and self.night_share > 0, t_s)
        offers = len(pool.scores)
        bisect.insort(pool.scores, novelty)
        if pool.spent >= pool.allowance:
            return False
        if offers == 0:
            pool.spent += 1
            return True
        pool.active_s += min(max(t_s - pool.last_s, 0.0), _MAX_GAP_S)
        pool.last_s = t_s
        expected = offers / max(pool.active_s, 1.0) * (DAY_S - t_s)
        elapsed = (t_s - pool.first_s) / max(DAY_S - pool.first_s, 1.0)
        share = (pool.allowance - pool.spent) / max(expected, 1.0)
        keep = share >= 1.0 or self._above_bar(pool, novelty, share, elapsed)
        if keep:
            pool.spent += 1
        return keep

    @staticmethod
    def _above_bar(pool: _Pool, novelty: float, share: float, elapsed: float) -> bool:
        """Above the ``1 - share`` quantile of the pool's novelties; at the bar only while not ahead of pace."""
        bar = pool.scores[min(int((1.0 - share) * (len(pool.scores) - 1)), len(pool.scores) - 1)]
        if novelty > bar:
            return True
        return novelty == bar and pool.spent < pool.allowance * elapsed

    def _pool(self, stream: str, day: str, night: bool, t_s: float) -> _Pool:
        key = (stream, day, night)
        pool = self._pools.get(key)
        if pool is None:
            for old in [k for k in self._pools if k[0] == stream and k[1] != day]:
                del self._pools[old]  # a new day: yesterday's pools go
            pool = self._pools[key] = _Pool(int(self.allowance(night) or 0), t_s, last_s=t_s)
        return pool

    def counts(self, stream: str) -> dict[str, int]:
        """``kept`` (``night_kept`` of them infrared) and ``refused`` offers of ``stream`` since the start."""
        return {"kept": self.kept[stream], "night_kept": self.night_kept[stream], "refused": self.refused[stream]}
