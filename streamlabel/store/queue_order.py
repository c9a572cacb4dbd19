"""The order of the unfiltered review queue, read along the indexes so that a page costs what it shows.

The queue is a run of groups: parts the student disagrees on (``labels.disagreement > 0``), one group per score,
highest first; then the rest (score NULL or 0). Inside a group, parts are ordered by the distance of the verdict
confidence from the review threshold, judged before unjudged (NULL confidence), then by row id: the key
``(-disagreement, distance, unjudged, id)``, the same order as ``review_queue._ORDER``. A group is read from its
threshold outwards by three range scans per status on ``labels(status, disagreement, verdict_confidence)``
(upwards from the threshold, downwards from it, the unjudged by id), merged; the scores themselves are read along
the same index, highest first.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from streamlabel.store.manifest import Manifest
    from streamlabel.store.review_queue import QueueFilter

Key = tuple[float, float, int, int]  # (-disagreement, distance from the threshold, unjudged, id)
Part = tuple[str, tuple[Any, ...]]  # one equality condition on the disagreement, so the index orders the scan
DISAGREES = "l.disagreement > 0"
# Parts without a disagreement score above 0; each is an equality on the index, so the scan reads in order. Scores
# are 0-1 (docs/student.md); a negative one (never written) would be counted but not listed here.
REST: tuple[Part, ...] = (("l.disagreement IS NULL", ()), ("l.disagreement = 0", ()))
_ABOVE = "l.verdict_confidence >= ?"
_BELOW = "l.verdict_confidence < ?"
_UNJUDGED = "l.verdict_confidence IS NULL"
_EPS = 1e-9  # widens a band so that float rounding of threshold ± distance never drops the item's equals


def key_of(row: sqlite3.Row | dict[str, Any], threshold: float) -> Key:
    """The sort key of a label row (``id``, ``verdict_confidence``, ``disagreement``)."""
    conf, score = row["verdict_confidence"], row["disagreement"]
    first = -score if score is not None and score > 0 else 0.0
    return (first, abs((conf if conf is not None else 0.0) - threshold), int(conf is None), int(row["id"]))


def group_of(score: float | None) -> tuple[Part, ...]:
    """The index parts of the group a part with this disagreement score belongs to."""
    return (("l.disagreement = ?", (score,)),) if score is not None and score > 0 else REST


def _one(where: QueueFilter, status: str) -> tuple[str, list[Any]]:
    """The filter's condition for one status; the "student disagrees" filter is applied by choosing the groups
    (written into every scan it makes SQLite read along the confidence index instead)."""
    return replace(where, statuses=(status,), disagrees=False).where()


class QueueOrder:
    """Pages and neighbours of the unfiltered queue of one manifest."""

    def __init__(self, manifest: Manifest, threshold: float) -> None:
        self.manifest = manifest
        self.threshold = threshold

    def first(self, where: QueueFilter, count: int) -> list[Key]:
        """The first ``count`` keys of the queue."""
        return list(heapq.merge(*(self._first_of(where, s, count) for s in where.statuses)))[:count]

    def _first_of(self, where: QueueFilter, status: str, count: int) -> list[Key]:
        """The first ``count`` keys of one status: the disagreeing parts by score, then the rest."""
        top = self._scan(where, status, DISAGREES, (), "l.disagreement DESC", count)
        if len(top) == count:  # the lowest score read may have more parts than fitted: read its group in order
            low = top[-1][0]
            top = [k for k in top if k[0] < low] + self._group_first(where, status, group_of(-low), count)
            return sorted(top)[:count]
        if where.disagrees:
            return sorted(top)
        return sorted(top) + self._group_first(where, status, REST, count - len(top))

    def _group_first(self, where: QueueFilter, status: str, parts: tuple[Part, ...], count: int) -> list[Key]:
        t, keys = self.threshold, []
        for cond, params in parts:
            keys += self._scan(where, status, f"{cond} AND {_ABOVE}", (*params, t), "l.verdict_confidence", count)
            keys += self._scan(where, status, f"{cond} AND {_BELOW}", (*params, t), "l.verdict_confidence DESC", count)
            keys += self._scan(where, status, f"{cond} AND {_UNJUDGED}", params, "l.id", count)
        return sorted(keys)[:count]

    def _group_last(self, where: QueueFilter, status: str, parts: tuple[Part, ...]) -> Key | None:
        t, keys = self.threshold, []
        for cond, params in parts:
            keys += self._scan(where, status, f"{cond} AND {_ABOVE}", (*params, t), "l.verdict_confidence DESC", 1)
            keys += self._scan(where, status, f"{cond} AND {_BELOW}", (*params, t), "l.verdict_confidence", 1)
            keys += self._scan(where, status, f"{cond} AND {_UNJUDGED}", params, "l.id DESC", 1)
        return max(keys, default=None)

    def neighbours(self, where: QueueFilter, row: sqlite3.Row, probe: int) -> tuple[int | None, int | None]:
        """The ids before and after the part ``row`` (which is in the queue), across group boundaries."""
        me = key_of(row, self.threshold)
        after: list[Key] = []
        before: list[Key] = []
        for status in where.statuses:
            nxt, prev = self._around(where, status, me, probe)
            after += [k for k in nxt if k > me][:1] or self._next_group(where, status, me)
            before += [k for k in prev if k < me][-1:] or self._previous_group(where, status, me)
        nearest_after, nearest_before = min(after, default=None), max(before, default=None)
        return (nearest_before[-1] if nearest_before else None), (nearest_after[-1] if nearest_after else None)

    def _around(self, where: QueueFilter, status: str, me: Key, probe: int) -> tuple[list[Key], list[Key]]:
        """Keys of ``me``'s group just after and just before it (each sorted), ``probe`` rows per scan."""
        t, distance, unjudged, my_id = self.threshold, me[1], me[2], me[3]
        up, down = t + distance, t - distance  # where the distance lies on each side (exact keys compared later)
        after: list[Key] = []
        before: list[Key] = []
        conf = "l.verdict_confidence"
        for cond, params in group_of(-me[0]):
            scans = (
                (after, f"{_ABOVE} AND {conf} >= ?", (t, up - _EPS), conf),
                (after, f"{_BELOW} AND {conf} <= ?", (t, down + _EPS), f"{conf} DESC"),
                (after, f"{_UNJUDGED} AND l.id > ?", (my_id if unjudged else -1,), "l.id"),
                (before, f"{_ABOVE} AND {conf} <= ?", (t, up + _EPS), f"{conf} DESC"),
                (before, f"{_BELOW} AND {conf} >= ?", (t, down - _EPS), conf),
                (before, f"{_UNJUDGED} AND l.id < ?", (my_id if unjudged else 2**62,), "l.id DESC"),
            )
            for out, band, args, order in scans:
                out += self._scan(where, status, f"{cond} AND {band}", (*params, *args), order, probe)
        return sorted(after), sorted(before)

    def _next_group(self, where: QueueFilter, status: str, me: Key) -> list[Key]:
        """The first key of the group after ``me``'s (a lower score, or the rest), in one status."""
        if me[0] == 0:
            return []
        lower = self._score(where, status, f"{DISAGREES} AND l.disagreement < ?", -me[0], "DESC")
        if lower is None and where.disagrees:
            return []
        return self._group_first(where, status, REST if lower is None else group_of(lower), 1)

    def _previous_group(self, where: QueueFilter, status: str, me: Key) -> list[Key]:
        """The last key of the group before ``me``'s (the next higher score), in one status."""
        higher = self._score(where, status, f"{DISAGREES} AND l.disagreement > ?", -me[0], "ASC")
        last = None if higher is None else self._group_last(where, status, group_of(higher))
        return [last] if last else []

    def _score(self, where: QueueFilter, status: str, cond: str, score: float, order: str) -> float | None:
        cond_all, params = _one(where, status)
        rows = self.manifest.query(
            f"SELECT l.disagreement FROM labels l WHERE {cond_all} AND {cond} ORDER BY l.disagreement {order} LIMIT 1",
            (*params, score),
        )
        return float(rows[0][0]) if rows else None

    def _scan(
        self, where: QueueFilter, status: str, band: str, band_params: tuple[Any, ...], order: str, limit: int
    ) -> list[Key]:
        """Keys of one status inside ``band``, read in ``order`` (along the index), sorted by key."""
        if limit <= 0:
            return []
        cond, params = _one(where, status)
        rows = self.manifest.query(
            f"SELECT l.id, l.verdict_confidence, l.disagreement FROM labels l WHERE {cond} AND {band} "
            f"ORDER BY {order} LIMIT ?",
            (*params, *band_params, limit),
        )
        return sorted(key_of(r, self.threshold) for r in rows)
