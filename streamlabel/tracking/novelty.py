"""The novelty gate: per part track, near-copies of what the track last kept are counted, not sent on.

A pet camera mostly films a sleeping dog; without the gate every sampled frame goes to the validator and the
store. ``NoveltyGate.decide`` compares a tracked part with the state its track last *kept* (not the previous
frame, so a slow drift adds up until it is kept) on five measures, each divided by its threshold in
``tracking.novelty`` so that 1 means "just enough":

- ``appearance``: the embedding of the frame's pixels inside the anchor box the track last kept (so that the
  detector's jitter of the box does not count as a change), by default a 16×16 grayscale thumbnail compared by
  normalised correlation, ``(1 - r) / 2``. Cheap (one resize of the crop, no model), blind to sensor noise and JPEG
  blocks at that size, and, being zero-mean and unit-norm, blind to the exposure and gain changes a camera makes on
  its own. A colour histogram would miss a dog turning its head (same colours). ``embedder`` plugs in the detector's
  own backbone features instead (compared by cosine).
- ``part_moved`` / ``anchor_moved``: 1 - IoU of the part / anchor box with the kept one.
- ``part_size``: the relative change of the part box's area.
- ``interval``: seconds since the track's last kept frame; ``max_interval_s`` forces a keep.

A change of the other measures must last ``min_novel_frames`` decisions in a row before the part is kept, so a
one-frame outlier (a box landing beside the eye, a detector glitch) is not a new moment; a real change is kept
that many frames late.

A changed ``state`` (an opaque tuple from the caller: a blink ended, a person left) forces a keep, and so do
untracked parts (track id None). A track without a reference is kept at its ``min_track_frames``-th decision
(``first``; ``new`` before): the first frames of a track are where short false tracks (a box on a cushion, an ear
seen for a moment) and not yet confirmed dogs are, and once near-copies are gone those would weigh on the
dataset's precision. A new track whose part lies where another track, no longer seen, last kept one (the tracker
lost the part and found it again under a new id) starts from that track's reference instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamlabel.config.novelty import NoveltyConfig

log = logging.getLogger(__name__)

# (image H×W×3 uint8, anchor box xyxy in pixels) -> 1-D embedding of the anchor's appearance.
Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]

NEW_TRACK_NOVELTY = 10.0  # the novelty reported for a first or untracked part (and the cap of any measure)
_SWEEP_EVERY = 512  # decisions between two sweeps of tracks not seen for a long time


@dataclass(frozen=True)
class Decision:
    """Whether a part goes on (``keep``), how novel it is (>= 1: some measure reached its threshold), and why.

    ``reason`` is ``untracked``, ``first``, ``state``, ``disabled``, the name of the largest measure when kept,
    ``near_copy``, ``new`` (a track seen fewer than ``min_track_frames`` times, no reference yet), or
    ``unconfirmed`` (a measure reached its threshold for fewer than ``min_novel_frames`` decisions in a row).
    ``measures`` holds every measure divided by its threshold.
    """

    keep: bool
    novelty: float
    reason: str
    measures: dict[str, float] = field(default_factory=dict)


@dataclass
class _Kept:
    t_s: float
    embedding: np.ndarray
    anchor_xyxy: np.ndarray
    part_xyxy: np.ndarray
    state: tuple[Hashable, ...]
    seen_s: float
    streak: int = 0  # consecutive decisions since the last keep whose measures reached a threshold


def thumbnail_embedding(image: np.ndarray, xyxy: np.ndarray, side_px: int = 16) -> np.ndarray:
    """The ``side_px``² grayscale thumbnail of ``image`` inside ``xyxy``, zero-mean and unit-norm (flat: zeros)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.asarray(xyxy, np.float64).reshape(4)
    c1, r1 = min(max(int(x1), 0), w - 1), min(max(int(y1), 0), h - 1)
    c2, r2 = max(min(int(np.ceil(x2)), w), c1 + 1), max(min(int(np.ceil(y2)), h), r1 + 1)
    # Bilinear to 4× the side, then an exact 4×4 box average: INTER_AREA straight from a large crop takes its slow
    # non-integer path (about 3 ms for 600×450 here, against 0.15 ms this way) for nearly the same thumbnail.
    mid = cv2.resize(image[r1:r2, c1:c2], (4 * side_px, 4 * side_px), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(mid, cv2.COLOR_RGB2GRAY) if mid.ndim == 3 else mid
    thumb = cv2.resize(gray, (side_px, side_px), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 1e-9 else np.zeros_like(thumb)


def appearance_change(a: np.ndarray, b: np.ndarray) -> float:
    """``(1 - cosine) / 2`` of two embeddings: 0 the same, 0.5 unrelated, 1 opposite; 0 when both are flat."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-9 or nb < 1e-9:
        return 0.0 if na < 1e-9 and nb < 1e-9 else 0.5
    return float(np.clip((1.0 - float(np.dot(a, b)) / (na * nb)) / 2.0, 0.0, 1.0))


class NoveltyGate:
    """Per (stream, track id): keep a part only when it differs enough from the track's last kept state.

    ``kept`` and ``dropped`` count decisions per stream (metrics, status). Call ``forget`` when a track ends;
    tracks not seen for ten ``max_interval_s`` are also forgotten on their own. Not thread-safe: one gate per
    Labeler thread (a stream's frames are decided in order).
    """

    def __init__(self, cfg: NoveltyConfig, embedder: Embedder | None = None) -> None:
        self.cfg = cfg
        self.embedder: Embedder = embedder or (lambda image, xyxy: thumbnail_embedding(image, xyxy, cfg.thumbnail_px))
        self.kept: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._tracks: dict[tuple[str, int], _Kept] = {}
        self._new: dict[tuple[str, int], tuple[int, float]] = {}  # tracks not kept yet: (decisions, last seen_s)
        self._decisions = 0

    def decide(
        self,
        stream: str,
        track_id: int | None,
        t_s: float,
        image: np.ndarray,
        anchor_xyxy: np.ndarray,
        part_xyxy: np.ndarray,
        state: tuple[Hashable, ...] = (),
    ) -> Decision:
        """Keep or count as a near-copy one part of ``stream`` at ``t_s`` (seconds, any clock that only grows).

        ``image`` is the frame (H×W×3 uint8), the boxes are pixels; ``state`` is whatever else the caller
        wants a keep on when it changes. A kept part becomes its track's reference.
        """
        if track_id is None or track_id < 0 or not self.cfg.enabled:
            reason = "disabled" if not self.cfg.enabled else "untracked"
            return self._count(stream, Decision(True, NEW_TRACK_NOVELTY, reason))
        self._sweep(stream, t_s)
        anchor, part = np.asarray(anchor_xyxy, np.float64).reshape(4), np.asarray(part_xyxy, np.float64).reshape(4)
        key = (stream, int(track_id))
        last = self._tracks.get(key)
        if last is None:
            last = self._inherit(stream, t_s, part)
            if last is not None:
                self._tracks[key] = last
        if last is None or t_s < last.t_s:
            decision = self._first(key, t_s)
        else:
            last.seen_s = t_s
            # The pixels where the anchor was when last kept: the detector's jitter of the box is not a change of
            # appearance (box changes have measures of their own), a dog moving or turning is.
            there = self.embedder(image, last.anchor_xyxy)
            decision = self._compare(last, t_s, there, anchor, part, tuple(state))
        if decision.keep:
            self._tracks[key] = _Kept(t_s, self.embedder(image, anchor), anchor, part, tuple(state), t_s)
        return self._count(stream, decision)

    def _first(self, key: tuple[str, int], t_s: float) -> Decision:
        """A track without a reference: kept (``first``) at its ``min_track_frames``-th decision, ``new`` before."""
        seen = self._new.get(key, (0, t_s))[0] + 1
        if seen < self.cfg.min_track_frames:
            self._new[key] = (seen, t_s)
            return Decision(False, NEW_TRACK_NOVELTY, "new")
        self._new.pop(key, None)
        return Decision(True, NEW_TRACK_NOVELTY, "first")

    def _compare(
        self,
        last: _Kept,
        t_s: float,
        embedding: np.ndarray,
        anchor: np.ndarray,
        part: np.ndarray,
        state: tuple[Hashable, ...],
    ) -> Decision:
        """The measures of a part against its track's last kept state, and the decision they make."""
        cfg = self.cfg
        last_area, area = _area(last.part_xyxy), _area(part)
        measures = {
            "appearance": appearance_change(last.embedding, embedding) / cfg.min_appearance_change,
            "part_moved": (1.0 - _iou(last.part_xyxy, part)) / (1.0 - cfg.max_part_iou),
            "anchor_moved": (1.0 - _iou(last.anchor_xyxy, anchor)) / (1.0 - cfg.max_anchor_iou),
            "part_size": (abs(area - last_area) / max(last_area, 1e-9)) / cfg.min_size_change,
            "interval": (t_s - last.t_s) / cfg.max_interval_s,
        }
        measures = {name: min(value, NEW_TRACK_NOVELTY) for name, value in measures.items()}
        top = max(measures, key=lambda name: measures[name])
        novelty = measures[top]
        if state != last.state:
            return Decision(True, max(novelty, 1.0), "state", measures)
        if novelty < 1.0:
            last.streak = 0
            return Decision(False, novelty, "near_copy", measures)
        last.streak += 1
        if top == "interval" or last.streak >= cfg.min_novel_frames:
            return Decision(True, novelty, top, measures)
        return Decision(False, novelty, "unconfirmed", measures)

    def adopt(
        self,
        stream: str,
        track_id: int | None,
        t_s: float,
        image: np.ndarray,
        anchor_xyxy: np.ndarray,
        part_xyxy: np.ndarray,
        state: tuple[Hashable, ...] = (),
    ) -> None:
        """A part ``decide`` dropped goes on after all (another part of its frame was kept): it becomes its track's
        reference and is counted as kept instead of dropped. Same arguments as ``decide``."""
        if track_id is None or track_id < 0 or not self.cfg.enabled:
            return
        anchor, part = np.asarray(anchor_xyxy, np.float64).reshape(4), np.asarray(part_xyxy, np.float64).reshape(4)
        embedding = self.embedder(image, anchor)
        self._tracks[(stream, int(track_id))] = _Kept(t_s, embedding, anchor, part, tuple(state), t_s)
        self._new.pop((stream, int(track_id)), None)
        if self.dropped[stream] > 0:
            self.dropped[stream] -= 1
        self.kept[stream] += 1

    def _inherit(self, stream: str, t_s: float, part: np.ndarray) -> _Kept | None:
        """A new track whose part lies where another track of the stream, not seen at ``t_s``, last kept one
        (part IoU above ``max_part_iou``): the tracker lost the part and found it again under a new id. The new
        track starts from a copy of that reference instead of being kept as a first; None when there is none."""
        best, best_iou = None, self.cfg.max_part_iou
        for (s, _), kept in self._tracks.items():
            if s != stream or kept.seen_s >= t_s:
                continue
            iou = _iou(kept.part_xyxy, part)
            if iou > best_iou:
                best, best_iou = kept, iou
        if best is None:
            return None
        return _Kept(best.t_s, best.embedding, best.anchor_xyxy, best.part_xyxy, best.state, t_s)

    def _count(self, stream: str, decision: Decision) -> Decision:
        (self.kept if decision.keep else self.dropped)[stream] += 1
        return decision

    def forget(self, stream: str, track_id: int) -> None:
        """Drop a track's reference (its track ended); its next part, if any, is kept as a first."""
        self._tracks.pop((stream, int(track_id)), None)
        self._new.pop((stream, int(track_id)), None)

    def counts(self, stream: str) -> dict[str, int]:
        """``{"kept": n, "dropped": m}`` of ``stream`` since the gate was built."""
        return {"kept": self.kept[stream], "dropped": self.dropped[stream]}

    def tracks(self) -> int:
        """How many tracks have a kept reference (memory held)."""
        return len(self._tracks)

    def _sweep(self, stream: str, t_s: float) -> None:
        """Every few hundred decisions, forget ``stream``'s tracks not seen for ten ``max_interval_s``."""
        self._decisions += 1
        if self._decisions % _SWEEP_EVERY:
            return
        horizon_s = 10 * self.cfg.max_interval_s
        stale = [key for key, kept in self._tracks.items() if key[0] == stream and abs(t_s - kept.seen_s) > horizon_s]
        for key in stale:
            del self._tracks[key]
        for key in [
            key for key, (_, seen_s) in self._new.items() if key[0] == stream and abs(t_s - seen_s) > horizon_s
        ]:
            del self._new[key]
        if stale:
            log.debug("novelty gate forgot %d tracks not seen for %.0f s", len(stale), horizon_s)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two xyxy boxes. By hand: ``sv.box_iou_batch`` costs about 0.1 ms per call for a single pair."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = _area(a) + _area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def _area(xyxy: np.ndarray) -> float:
    return float(max(xyxy[2] - xyxy[0], 0.0) * max(xyxy[3] - xyxy[1], 0.0))
