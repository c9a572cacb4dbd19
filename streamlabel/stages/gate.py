"""ValidatorGate: a circuit breaker in front of the validator stage."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

VALIDATOR_PAUSE_FIRST_S = 5.0
"""After the validator was unreachable, candidates go straight to pending this long before it is asked again."""
VALIDATOR_PAUSE_MAX_S = 60.0
"""The pause doubles with every further failed attempt, up to this."""


class ValidatorGate:
    """Circuit breaker in front of the validator: an outage costs one round of retries, not one per batch.

    Each batch that finds the validator unreachable pauses it (``VALIDATOR_PAUSE_FIRST_S``, doubling up to
    ``VALIDATOR_PAUSE_MAX_S``); while paused the candidates are stored as pending at once, so the GPU stages keep
    their pace and live streams do not drop frames behind a validator that cannot answer. The first batch after the
    pause asks again; a success closes the gate. The daemon's housekeeping judges the pending frames later.
    """

    def __init__(
        self,
        first_s: float = VALIDATOR_PAUSE_FIRST_S,
        max_s: float = VALIDATOR_PAUSE_MAX_S,
        clock: Any = time.monotonic,
    ) -> None:
        self.first_s, self.max_s, self._clock = first_s, max_s, clock
        self._pause: float | None = None
        self._until = 0.0
        self.skipped = 0
        """Candidates sent straight to pending while paused."""

    @property
    def paused(self) -> bool:
        return self._clock() < self._until

    def failed(self) -> float:
        """The validator could not answer: pause it; returns the pause in seconds."""
        self._pause = self.first_s if self._pause is None else min(self.max_s, 2 * self._pause)
        self._until = self._clock() + self._pause
        return self._pause

    def answered(self) -> None:
        """The validator answered: no pause."""
        if self._pause is not None:
            log.info("validator answers again")
        self._pause, self._until = None, 0.0
