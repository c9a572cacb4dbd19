"""Box-level synthetic scenes with known truth, for the tracking benchmark: no pixels, only boxes and masks.

A scene has dogs that rest and walk between random spots (each with two eyes), eyes that blink (absent for a few
frames), a dog hidden behind furniture for a while, dogs hidden behind nearer dogs, a person who walks in, and a
detector that jitters every box and misses some at set rates. Every detection row carries ``data["truth"]``, the
index of the object it came from, so the benchmark scores the tracker without matching boxes. The seed fixes all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv

log = logging.getLogger(__name__)

DOG, PERSON, EYE = 16, 0, 0  # class ids: COCO for anchors, 0 for the single part class
WALK_ACCEL = 40.0  # px/s², peak acceleration of a walking dog (about half its body length per s²)


@dataclass(frozen=True)
class TrackingSceneSpec:
    """What a scene contains and how noisy its detector is; all rates per frame, sizes relative to the box."""

    width: int = 640
    height: int = 360
    fps: float = 10.0
    seconds: float = 30.0
    dogs: int = 3
    person_enters_s: float = 12.0
    occluded_dog: int = 1
    occluded_s: tuple[float, float] = (8.0, 9.0)
    blink_every_s: float = 4.0
    blink_frames: int = 2
    anchor_jitter: float = 0.05
    part_jitter: float = 0.08
    anchor_miss_rate: float = 0.05
    part_miss_rate: float = 0.05
    bad_mask_rate: float = 0.05
    seed: int = 0

    @property
    def n_frames(self) -> int:
        return round(self.fps * self.seconds)


@dataclass
class SceneStep:
    """One frame: time, the true boxes of the visible objects, and what the detector and grounder reported.

    Attributes:
        t: seconds from the start.
        truth: object index -> true xyxy box, visible objects only.
        anchors: detected anchors (``data["truth"]``, ``data["class_name"]``).
        parts: detected eyes (``data["truth"]``, ``data["anchor_index"]``, ``data["bad_mask"]``), with masks.
    """

    t: float
    truth: dict[int, np.ndarray]
    anchors: sv.Detections
    parts: sv.Detections = field(repr=False)


@dataclass(frozen=True)
class SceneObject:
    index: int
    kind: str  # "dog", "person" or "eye"
    parent: int = -1  # the dog of an eye


def _dog_path(
    spec: TrackingSceneSpec, k: int, rng: np.random.Generator
) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Dog ``k``'s day: rest 1-4 s, walk to a random spot at up to 40-90 px/s, easing in and out, again and again.

    Each dog keeps to its own band of rows, the bands overlapping by a third: dogs cross and partly cover each
    other, but never sit exactly on top of each other (boxes alone could not tell them apart).
    Returns ``(t0, t1, p0, p1)`` legs (centre moves from ``p0`` to ``p1`` between ``t0`` and ``t1``).
    """
    margin = 0.15 * spec.width
    band = (spec.height - 2 * 0.1 * spec.height) / spec.dogs
    top = 0.1 * spec.height + k * band
    low = np.array([margin, top - band / 6])
    high = np.array([spec.width - margin, top + band + band / 6])
    here = rng.uniform(low, high)
    t, legs = 0.0, []
    while t < spec.seconds:
        rest = rng.uniform(1.0, 4.0)
        legs.append((t, t + rest, here, here))
        t += rest
        there = rng.uniform(low, high)
        distance = float(np.linalg.norm(there - here))
        # Eased walk (smoothstep, peak acceleration 6 d / T²) no faster than the speed and WALK_ACCEL allow.
        walk = max(distance / rng.uniform(40.0, 90.0), float(np.sqrt(6 * distance / WALK_ACCEL)))
        legs.append((t, t + walk, here, there))
        t, here = t + walk, there
    return legs


def _dog_box(spec: TrackingSceneSpec, legs: list[tuple[float, float, np.ndarray, np.ndarray]], t: float) -> np.ndarray:
    """The dog's box at ``t``: eased position along its leg; nearer the camera (lower in the frame) is bigger."""
    t0, t1, p0, p1 = next(leg for leg in legs if leg[0] <= t < leg[1])
    u = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
    cx, cy = p0 + (p1 - p0) * (3 * u**2 - 2 * u**3)
    w = spec.width * (0.12 + 0.08 * cy / spec.height)
    h = 0.75 * w
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _person_box(spec: TrackingSceneSpec, t: float) -> np.ndarray | None:
    """The person walks in from the left at ``person_enters_s`` and across the frame at 40 px/s."""
    if t < spec.person_enters_s:
        return None
    h = spec.height * 0.8
    w = h * 0.35
    x1 = -0.6 * w + 40.0 * (t - spec.person_enters_s)  # detected once 40% of the person is in the frame
    x2 = min(x1 + w, spec.width)
    x1 = max(x1, 0.0)
    if x2 - x1 < 0.4 * w:
        return None
    return np.array([x1, spec.height * 0.1, x2, spec.height * 0.1 + h])


def _eye_boxes(dog: np.ndarray) -> list[np.ndarray]:
    """Two eyes on the dog's head (the right part of its box), each a square of 7% of the dog's width."""
    x1, y1, x2, y2 = dog
    w, h = x2 - x1, y2 - y1
    side = 0.07 * w
    out = []
    for fx in (0.68, 0.84):
        cx, cy = x1 + fx * w, y1 + 0.22 * h
        out.append(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
    return out


def _behind(box: np.ndarray, others: list[np.ndarray]) -> bool:
    """Hidden: more than half of ``box`` is covered by a dog nearer the camera (lower bottom edge in the frame)."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    for other in others:
        if other[3] <= box[3]:
            continue
        w = min(box[2], other[2]) - max(box[0], other[0])
        h = min(box[3], other[3]) - max(box[1], other[1])
        if w > 0 and h > 0 and w * h > 0.5 * area:
            return True
    return False


def scene_objects(spec: TrackingSceneSpec) -> list[SceneObject]:
    """Dogs 0..n-1, then the person, then two eyes per dog."""
    objects = [SceneObject(k, "dog") for k in range(spec.dogs)] + [SceneObject(spec.dogs, "person")]
    for k in range(spec.dogs):
        objects += [SceneObject(len(objects), "eye", k), SceneObject(len(objects) + 1, "eye", k)]
    return objects


def eye_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The filled ellipse inscribed in ``box`` on a canvas of ``shape``: what a good segmenter returns for an eye."""
    mask = np.zeros(shape, dtype=np.uint8)
    x1, y1, x2, y2 = box
    centre = (round((x1 + x2) / 2 * 4), round((y1 + y2) / 2 * 4))
    axes = (round((x2 - x1) / 2 * 4), round((y2 - y1) / 2 * 4))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


class Scene:
    """Iterate the steps of a scene; see the module doc."""

    def __init__(self, spec: TrackingSceneSpec | None = None) -> None:
        self.spec = spec or TrackingSceneSpec()
        self.objects = scene_objects(self.spec)
        rng = np.random.default_rng(self.spec.seed)
        n = self.spec.n_frames
        self._anchor_noise = rng.standard_normal((n, len(self.objects), 4))
        self._anchor_miss = rng.random((n, len(self.objects)))
        self._bad_mask = rng.random((n, len(self.objects)))
        self._blink_start = rng.uniform(0, self.spec.blink_every_s, len(self.objects))
        self._paths = [_dog_path(self.spec, k, rng) for k in range(self.spec.dogs)]

    def truth_at(self, i: int) -> dict[int, np.ndarray]:
        """Object index -> true box of every visible object in frame ``i``."""
        spec, t = self.spec, i / self.spec.fps
        out: dict[int, np.ndarray] = {}
        dogs = {k: _dog_box(spec, self._paths[k], t) for k in range(spec.dogs)}
        hidden = spec.occluded_s[0] <= t < spec.occluded_s[1]
        for k, box in dogs.items():
            if not (hidden and k == spec.occluded_dog) and not _behind(box, [b for o, b in dogs.items() if o != k]):
                out[k] = box
        person = _person_box(spec, t)
        if person is not None:
            out[spec.dogs] = person
        for obj in self.objects:
            if obj.kind == "eye" and obj.parent in out:
                eye = _eye_boxes(dogs[obj.parent])[(obj.index - spec.dogs - 1) % 2]
                period = round(spec.blink_every_s * spec.fps)
                start = round(self._blink_start[obj.index] * spec.fps)
                if (i - start) % period >= spec.blink_frames:
                    out[obj.index] = eye
        return out

    def step(self, i: int) -> SceneStep:
        """Frame ``i``: truth, then detections with jitter, misses and (for eyes) masks, some bad."""
        spec = self.spec
        truth = self.truth_at(i)
        anchors, anchor_rows = [], []
        for obj in self.objects[: spec.dogs + 1]:
            if obj.index in truth and self._anchor_miss[i, obj.index] >= spec.anchor_miss_rate:
                anchor_rows.append(obj.index)
                anchors.append(self._jittered(truth[obj.index], i, obj.index, spec.anchor_jitter))
        parts, part_rows, anchor_index, bad = [], [], [], []
        for obj in self.objects[spec.dogs + 1 :]:
            if obj.index not in truth or obj.parent not in anchor_rows:
                continue  # blinking, hidden, or its dog was missed (the grounder looks inside anchors)
            if self._anchor_miss[i, obj.index] < spec.part_miss_rate:
                continue
            part_rows.append(obj.index)
            anchor_index.append(anchor_rows.index(obj.parent))
            parts.append(self._jittered(truth[obj.index], i, obj.index, spec.part_jitter))
            bad.append(bool(self._bad_mask[i, obj.index] < spec.bad_mask_rate))
        masks = np.zeros((len(parts), spec.height, spec.width), dtype=bool)
        for j, (obj_index, is_bad) in enumerate(zip(part_rows, bad, strict=True)):
            box = truth[obj_index]
            if is_bad:  # the segmenter took the other eye
                sibling = obj_index + 1 if (obj_index - spec.dogs - 1) % 2 == 0 else obj_index - 1
                box = truth.get(sibling, box + np.array([1.0, 0.0, 1.0, 0.0]) * (box[2] - box[0]))
            masks[j] = eye_mask(box, (spec.height, spec.width))
        kinds = [self.objects[k].kind for k in anchor_rows]
        return SceneStep(
            t=i / spec.fps,
            truth=truth,
            anchors=sv.Detections(
                xyxy=np.array(anchors, dtype=np.float32).reshape(-1, 4),
                confidence=np.full(len(anchors), 0.9, dtype=np.float32),
                class_id=np.array([DOG if k == "dog" else PERSON for k in kinds], dtype=int),
                data={"truth": np.array(anchor_rows, dtype=int), "class_name": np.array(kinds, dtype=str)},
            ),
            parts=sv.Detections(
                xyxy=np.array(parts, dtype=np.float32).reshape(-1, 4),
                mask=masks,
                confidence=np.full(len(parts), 0.8, dtype=np.float32),
                class_id=np.full(len(parts), EYE, dtype=int),
                data={
                    "truth": np.array(part_rows, dtype=int),
                    "anchor_index": np.array(anchor_index, dtype=int),
                    "bad_mask": np.array(bad, dtype=bool),
                },
            ),
        )

    def _jittered(self, box: np.ndarray, i: int, obj: int, rate: float) -> np.ndarray:
        """``box`` with Gaussian noise on every side, ``rate`` of the box's width (x) and height (y) as std."""
        w, h = box[2] - box[0], box[3] - box[1]
        return box + self._anchor_noise[i, obj] * rate * np.array([w, h, w, h])

    def __iter__(self):
        return (self.step(i) for i in range(self.spec.n_frames))

    def __len__(self) -> int:
        return self.spec.n_frames
