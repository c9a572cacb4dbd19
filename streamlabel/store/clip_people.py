"""People in clips: the detector's person boxes of a stream's sampled frames, and where to blur between them.

A clip covers every video frame of its span, but the detector only saw the sampled ones. ``PeopleTimeline`` keeps,
per stream, the person boxes (``FrameResult.people``) of every recent sampled frame, with or without a person;
``ClipWriter`` takes a ``PeopleSpan`` of a clip's range from it when the clip is cut. ``PeopleSpan.boxes_at(t_s)``
is the rule that says which boxes cover the video frame at ``t_s`` (docs/privacy.md, "Clips"):

- at a sampled frame (within ``SAME_FRAME_S``): that frame's boxes;
- between two sampled frames: every box of both, and for each box of the earlier frame the hull of it and the
  nearest box (by centre) of the later one, so a person walking between the two samples stays covered along a
  straight path;
- before the first / after the last sample of the span: the boxes of that sample, held.

``privacy.margin_share`` then grows every box before it is pixelated (``streamlabel.privacy.apply_privacy``).
"""

from __future__ import annotations

import json
import math
import threading
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

import numpy as np

from streamlabel.config.privacy import PrivacyConfig
from streamlabel.privacy import apply_privacy

SAME_FRAME_S = 1e-3
"""A video frame this close to a sampled frame (seconds) is that frame."""


@dataclass(frozen=True)
class PeopleSample:
    """One sampled frame: its stream time (seconds) and its person boxes ((N, 4) xyxy pixels, N may be 0)."""

    pts_s: float
    boxes_xyxy: np.ndarray


@dataclass(frozen=True)
class PeopleSpan:
    """The sampled frames of a clip's range ``[start_s, end_s]`` (and the nearest one on each side), in time order."""

    samples: tuple[PeopleSample, ...] = ()
    start_s: float = -math.inf
    end_s: float = math.inf

    @property
    def has_people(self) -> bool:
        """Whether a person box covers some frame of the range: a sample with a person whose boxes reach into it
        (its own time, or the open stretch to its neighbouring samples)."""
        for k, sample in enumerate(self.samples):
            if not len(sample.boxes_xyxy):
                continue
            before = self.samples[k - 1].pts_s if k > 0 else -math.inf
            after = self.samples[k + 1].pts_s if k + 1 < len(self.samples) else math.inf
            if before + SAME_FRAME_S < self.end_s and after - SAME_FRAME_S > self.start_s:
                return True
        return False

    @property
    def person_samples(self) -> int:
        """Sampled frames of the span with at least one person."""
        return sum(1 for s in self.samples if len(s.boxes_xyxy))

    def boxes_at(self, t_s: float) -> np.ndarray:
        """The (M, 4) boxes that cover the video frame at stream time ``t_s`` (the rule of the module doc)."""
        if not self.samples:
            return np.zeros((0, 4))
        times = [s.pts_s for s in self.samples]
        k = bisect_left(times, t_s - SAME_FRAME_S)
        if k < len(times) and abs(times[k] - t_s) <= SAME_FRAME_S:
            return self.samples[k].boxes_xyxy
        if k == 0 or k == len(times):
            return self.samples[min(k, len(times) - 1)].boxes_xyxy
        return _between(self.samples[k - 1].boxes_xyxy, self.samples[k].boxes_xyxy)

    def blur(self, image: np.ndarray, t_s: float, cfg: PrivacyConfig) -> np.ndarray:
        """``image`` (the video frame at ``t_s``) with the boxes that cover it pixelated as ``privacy.people:
        blur`` does, whatever ``cfg.people`` says (the caller decided to blur this clip)."""
        out = apply_privacy(image, self.boxes_at(t_s), cfg.model_copy(update={"people": "blur"}))
        assert out is not None  # blur never drops
        return out

    def to_json(self) -> str:
        """The span as JSON (for a clip the stop leaves pending)."""
        samples = [[s.pts_s, np.asarray(s.boxes_xyxy).tolist()] for s in self.samples]
        return json.dumps({"start_s": _finite(self.start_s), "end_s": _finite(self.end_s), "samples": samples})

    @classmethod
    def from_json(cls, text: str | None) -> PeopleSpan:
        """The span ``to_json`` wrote; empty for None."""
        if not text:
            return cls()
        doc = json.loads(text)
        samples = tuple(PeopleSample(float(t), np.asarray(b, np.float64).reshape(-1, 4)) for t, b in doc["samples"])
        start_s, end_s = doc.get("start_s"), doc.get("end_s")
        return cls(
            samples,
            -math.inf if start_s is None else float(start_s),
            math.inf if end_s is None else float(end_s),
        )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _between(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Every box of both neighbouring samples, plus the hull of each earlier box and its nearest later box."""
    boxes = [np.asarray(before, np.float64).reshape(-1, 4), np.asarray(after, np.float64).reshape(-1, 4)]
    if len(boxes[0]) and len(boxes[1]):
        centres_after = (boxes[1][:, :2] + boxes[1][:, 2:]) / 2
        for box in boxes[0]:
            centre = (box[:2] + box[2:]) / 2
            partner = boxes[1][int(np.argmin(np.linalg.norm(centres_after - centre, axis=1)))]
            boxes.append(np.concatenate([np.minimum(box[:2], partner[:2]), np.maximum(box[2:], partner[2:])])[None])
    return np.concatenate(boxes)


class PeopleTimeline:
    """Per stream, the person boxes of the sampled frames of the last ``horizon_s`` seconds of stream time.

    Fed by the labeling thread (``add``), read by the clip thread (``span``): thread-safe. A stream whose time goes
    back (a reconnect restarted its clock) starts over.
    """

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._streams: dict[str, deque[PeopleSample]] = {}
        self._lock = threading.Lock()

    def add(self, stream: str, pts_s: float, boxes_xyxy: np.ndarray | None) -> None:
        """Note a sampled frame of ``stream`` at ``pts_s`` and its person boxes (None or empty: nobody)."""
        boxes = np.zeros((0, 4)) if boxes_xyxy is None else np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        with self._lock:
            samples = self._streams.setdefault(stream, deque())
            if samples and pts_s < samples[-1].pts_s:
                samples.clear()
            samples.append(PeopleSample(float(pts_s), boxes))
            while pts_s - samples[0].pts_s > self.horizon_s:
                samples.popleft()

    def span(self, stream: str, start_s: float, end_s: float) -> PeopleSpan:
        """The samples of ``[start_s, end_s]`` plus the last one before and the first one after."""
        with self._lock:
            samples = list(self._streams.get(stream, ()))
        times = [s.pts_s for s in samples]
        first = max(bisect_left(times, start_s) - 1, 0)
        last = min(bisect_left(times, end_s + SAME_FRAME_S) + 1, len(samples))
        return PeopleSpan(tuple(samples[first:last]), start_s, end_s)

    def forget(self, stream: str) -> None:
        """The stream ended (its clips are cut): drop its samples."""
        with self._lock:
            self._streams.pop(stream, None)
