"""TEST FIXTURES: stages factories the labeler actors call (by reference: Ray workers import this module)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import supervision as sv

from streamlabel.config import Config
from streamlabel.pipeline import Stages
from tests.daemon.harness import CountingDetector, scripted_stages

SLOW_DETECT_S = 0.05  # per image: a run of 40 frames lasts long enough to kill a node in the middle of it
BEHIND_DETECT_S = 0.6  # per image: slower than a 2 fps camera, so its frames in flight stay at the cap


class SlowDetector(CountingDetector):
    """The same dog in every frame, ``delay_s`` (``SLOW_DETECT_S``) per image."""

    def __init__(self, delay_s: float = SLOW_DETECT_S) -> None:
        super().__init__()
        self.delay_s = delay_s

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        time.sleep(self.delay_s * len(images))
        return super().detect(images)


def scripted(cfg: Config) -> Stages:
    """A dog in every frame, two eyes per dog, box masks, every candidate passed."""
    return scripted_stages()


def slow(cfg: Config) -> Stages:
    """``scripted`` with a slow detector."""
    return scripted_stages(detector=SlowDetector())


def behind(cfg: Config) -> Stages:
    """``scripted`` with a detector slower than a 2 fps camera."""
    return scripted_stages(detector=SlowDetector(BEHIND_DETECT_S))
