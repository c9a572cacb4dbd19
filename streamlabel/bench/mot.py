"""MOT-format sequences for the tracker comparison: ground truth from a ``gt.txt`` or generated, and a seeded detector.

A ``gt.txt`` (MOTChallenge format) has one box per line: ``frame, id, left, top, width, height, flag, class, ...``
with 1-based frames; rows with flag 0 are left out, and in MOT16+ files (9 columns) rows of a class other than
pedestrian (1) too. ``bundled_sequences`` finds the two TUD sequences (real pedestrian ground truth, 25 fps) that the
``motmetrics`` package ships in its ``data`` folder; nothing is downloaded and nothing is copied into this project.

``detect`` plays a detector on the truth, from a seed: box jitter, misses (more for occluded people), false
positives and scores (lower for occluded people), so every tracker sees the same detections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import supervision as sv

log = logging.getLogger(__name__)

# The TUD sequences motmetrics ships (MOT15): both 640x480 at 25 fps.
BUNDLED = {"TUD-Campus": 25.0, "TUD-Stadtmitte": 25.0}
PEDESTRIAN_CLASS = 1
MOT16_COLUMNS = 9  # frame, id, box (4), flag, class, visibility


@dataclass(frozen=True)
class FrameTruth:
    """The true boxes of one frame: ``ids (N,)`` int and ``xyxy (N, 4)`` float."""

    ids: np.ndarray
    xyxy: np.ndarray


@dataclass(frozen=True)
class MotSequence:
    """A sequence of true boxes at ``fps`` frames per second; ``frames[k]`` is MOT frame ``k + 1``."""

    name: str
    fps: float
    frames: list[FrameTruth]

    @property
    def boxes(self) -> int:
        return sum(len(f.ids) for f in self.frames)


def read_mot(path: Path, fps: float, name: str | None = None) -> MotSequence:
    """Read a MOTChallenge ``gt.txt`` (see the module doc for the rows kept); frames without boxes stay empty.

    Raises:
        ValueError: a line has fewer than 6 numbers (names the file and the line).
    """
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        values = [float(v) for v in line.replace(" ", "").split(",") if v != ""]
        if len(values) < 6:
            raise ValueError(f"{path}:{number}: a MOT row needs frame,id,left,top,width,height (got {line!r})")
        flag = values[6] if len(values) > 6 else 1.0
        cls = values[7] if len(values) == MOT16_COLUMNS else -1.0  # MOT15's 10 columns end in world coordinates
        if flag != 0 and (cls <= 0 or cls == PEDESTRIAN_CLASS):
            rows.append(values[:6])
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    n_frames = int(table[:, 0].max()) if len(table) else 0
    frames = []
    for k in range(1, n_frames + 1):
        mine = table[table[:, 0] == k]
        xyxy = np.concatenate([mine[:, 2:4], mine[:, 2:4] + mine[:, 4:6]], axis=1)
        frames.append(FrameTruth(mine[:, 1].astype(int), xyxy))
    return MotSequence(name or Path(path).parent.name, fps, frames)


def write_mot(sequence: MotSequence, path: Path) -> None:
    """Write ``sequence`` as a MOTChallenge ``gt.txt`` (flag 1, class 1, visibility 1) that ``read_mot`` reads back."""
    lines = []
    for k, frame in enumerate(sequence.frames, start=1):
        for obj, (x1, y1, x2, y2) in zip(frame.ids.tolist(), frame.xyxy.tolist(), strict=True):
            lines.append(f"{k},{obj},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,1,1")
    Path(path).write_text("\n".join(lines) + "\n")


def bundled_sequences() -> list[MotSequence]:
    """The TUD sequences shipped by the ``motmetrics`` package, or ``[]`` when it is not installed."""
    spec = find_spec("motmetrics")
    if spec is None or spec.origin is None:
        log.info("motmetrics is not installed: no bundled MOT sequences (pip install 'streamlabel[bench]')")
        return []
    data = Path(spec.origin).parent / "data"
    return [read_mot(data / name / "gt.txt", fps, name) for name, fps in BUNDLED.items() if (data / name).is_dir()]


@dataclass(frozen=True)
class DetectorNoise:
    """How the simulated detector errs; every rate is per box or per frame, every size relative to the box.

    Attributes:
        jitter: std of each box side, as a share of the box width (x) or height (y).
        miss_rate: chance a fully visible person is missed.
        occluded_from, occluded_gone: occluded share (of the box, by people in front) where misses start to rise,
            and where the person is always missed.
        false_per_frame: mean number of false detections per frame (Poisson), person-shaped, low scores.
        score_floor: detections scoring below this are dropped, as a detector's output threshold does.
    """

    jitter: float = 0.05
    miss_rate: float = 0.05
    occluded_from: float = 0.3
    occluded_gone: float = 0.85
    false_per_frame: float = 0.3
    score_floor: float = 0.1


def occluded_share(xyxy: np.ndarray) -> np.ndarray:
    """Per box, the share of its area covered by boxes in front of it (camera at ground level: a lower bottom edge
    is nearer), capped at 1; overlaps of the covering boxes are counted twice, which is close enough here."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0)
    lo = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    hi = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    in_front = boxes[None, :, 3] > boxes[:, None, 3]
    area = np.maximum(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1), 1e-9)
    return np.minimum((inter * in_front).sum(axis=1) / area, 1.0)


def detect(sequence: MotSequence, seed: int, noise: DetectorNoise | None = None) -> list[sv.Detections]:
    """Detections for every frame of ``sequence`` from a seeded simulated detector (see ``DetectorNoise``).

    Rows carry ``confidence`` and ``class_id`` 0; true and false rows are shuffled so no order leaks the truth.
    """
    noise = noise or DetectorNoise()
    rng = np.random.default_rng(seed)
    span = np.concatenate([f.xyxy for f in sequence.frames if len(f.xyxy)] or [np.zeros((1, 4))])
    width, height = float(span[:, 2].max()), float(span[:, 3].max())
    out = []
    for frame in sequence.frames:
        true_boxes, true_scores = _detect_true(frame.xyxy, rng, noise)
        false_boxes, false_scores = _detect_false(rng, noise, width, height)
        boxes = np.concatenate([true_boxes, false_boxes])
        scores = np.concatenate([true_scores, false_scores])
        keep = scores >= noise.score_floor
        order = rng.permutation(int(keep.sum()))
        out.append(
            sv.Detections(
                xyxy=boxes[keep][order].astype(np.float32),
                confidence=scores[keep][order].astype(np.float32),
                class_id=np.zeros(len(order), dtype=int),
            )
        )
    return out


def _detect_true(xyxy: np.ndarray, rng: np.random.Generator, noise: DetectorNoise) -> tuple[np.ndarray, np.ndarray]:
    """Jittered boxes and scores of the people the detector finds in one frame."""
    occluded = occluded_share(xyxy)
    ramp = np.clip((occluded - noise.occluded_from) / (noise.occluded_gone - noise.occluded_from), 0.0, 1.0)
    p_miss = noise.miss_rate + (1 - noise.miss_rate) * ramp
    found = rng.random(len(xyxy)) >= p_miss
    size = np.tile(xyxy[:, 2:] - xyxy[:, :2], 2)
    boxes = xyxy + rng.normal(0.0, noise.jitter, xyxy.shape) * size
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
    scores = np.clip(rng.normal(0.85 - 0.6 * occluded, 0.1), 0.01, 1.0)
    return boxes[found].reshape(-1, 4), scores[found]


def _detect_false(
    rng: np.random.Generator, noise: DetectorNoise, width: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """False detections of one frame: person-shaped boxes anywhere, with low scores."""
    n = int(rng.poisson(noise.false_per_frame))
    h = rng.uniform(0.15, 0.5, n) * height
    w = h * rng.uniform(0.3, 0.5, n)
    x = rng.uniform(0, np.maximum(width - w, 1.0))
    y = rng.uniform(0, np.maximum(height - h, 1.0))
    boxes = np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4)
    return boxes, rng.uniform(0.05, 0.55, n)
