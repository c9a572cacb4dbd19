"""BENCHMARK CODE: synthetic pet-camera sequences with known truth for ``streamlabel bench quality``.

A sequence has dogs that rest and wander (each with two eyes on its head; both close now and then), a cushion
that the scripted detector now and then takes for a dog, and, in some sequences, a person who walks through. Every
frame carries its sequence number and frame index in its top-left pixel, so the scripted stages
(``bench.quality_stages``) look up the truth of the frame they are handed, whatever batch or order it comes in.
The pixels are flat shapes for a person looking at the store; no stage reads them.

``true_checks`` answers the default validation checklist from the truth; the scripted validator and the scorer
(``bench.quality_score``) both use it, so "good candidate" means the same to both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from streamlabel.frames import Frame

log = logging.getLogger(__name__)

GOOD_IOU = 0.5  # a mask (or label) is on an eye when its box has at least this IoU with the eye's box
TOUCH_IOU = 0.1  # a mask lies on an eye (rather than beside it) from this IoU on
EYE_SIDE = 0.12  # eye side as a share of its dog's width
EYE_X = (0.62, 0.80)  # eye centres across the dog's box (its head is on the right)
EYE_Y = 0.28  # eye centres down the dog's box
MAX_FRAMES = 1 << 16  # the frame index is two bytes of the mark
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class QualitySceneSpec:
    """What one sequence contains; rates are per sampled frame, the seed fixes everything."""

    width: int = 320
    height: int = 240
    fps: float = 2.0
    frames: int = 60
    dogs: int = 2
    dog_width_px: tuple[float, float] = (80.0, 110.0)
    speed_px_s: float = 15.0
    closed_rate: float = 0.06  # share of frames in which a dog's eyes are closed (blink, squint, nap)
    person_chance: float = 0.5  # chance that a person walks through the sequence
    person_s: tuple[float, float] = (2.0, 4.0)  # how long the person is in frame
    seed: int = 0


@dataclass(frozen=True)
class FrameTruth:
    """The truth of one frame.

    Attributes:
        index: frame index in its sequence.
        dogs: (D, 4) xyxy of every dog (all are visible).
        eyes: (2D, 4) xyxy of every eye; rows ``2d`` and ``2d + 1`` belong to dog ``d``.
        eye_open: (2D,) whether each eye is open.
        cushion: xyxy of the cushion the detector may take for a dog; ``button`` is the eye-sized button on it.
        person: xyxy of the person, or None when nobody is in frame.
    """

    index: int
    dogs: np.ndarray
    eyes: np.ndarray
    eye_open: np.ndarray
    cushion: np.ndarray
    button: np.ndarray
    person: np.ndarray | None = None

    @property
    def open_eyes(self) -> np.ndarray:
        return self.eyes[self.eye_open]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes`` (N, 4); zeros for degenerate boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(box, dtype=np.float64)
    w = np.clip(np.minimum(b[2], boxes[:, 2]) - np.maximum(b[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(b[3], boxes[:, 3]) - np.maximum(b[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (b[2] - b[0]) * (b[3] - b[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def best_match(box: np.ndarray, boxes: np.ndarray) -> tuple[int, float]:
    """Row of ``boxes`` with the highest IoU with ``box`` and that IoU; (-1, 0.0) when there are none."""
    ious = box_iou(box, boxes)
    if len(ious) == 0:
        return -1, 0.0
    k = int(ious.argmax())
    return k, float(ious[k])


def true_checks(truth: FrameTruth, part_box: np.ndarray, anchor_box: np.ndarray) -> dict[str, bool]:
    """The true answer of each default check for a candidate: its mask's box and its anchor's box.

    A candidate is good when every answer is true: its anchor is a dog, its mask lies on that dog's own open eye
    with IoU >= ``GOOD_IOU``, and nobody is in the frame.
    """
    dog, dog_iou = best_match(anchor_box, truth.dogs)
    eye, eye_iou = best_match(part_box, truth.eyes)
    is_dog = dog_iou >= GOOD_IOU
    on_eye = eye >= 0 and eye_iou >= TOUCH_IOU
    return {
        "anchor_visible": is_dog,
        "part_visible": on_eye and bool(truth.eye_open[eye]),
        "no_human": truth.person is None,
        "mask_on_part": on_eye and is_dog and eye // 2 == dog,
        "mask_quality": on_eye and eye_iou >= GOOD_IOU,
    }


def mark(image: np.ndarray, sequence: int, index: int) -> None:
    """Write ``sequence`` (0-255) and ``index`` (0-65535) into the top-left pixel of ``image``."""
    image[0, 0] = (sequence, index >> 8, index & 0xFF)


def read_mark(image: np.ndarray) -> tuple[int, int]:
    """``(sequence, index)`` from a frame's top-left pixel (see ``mark``)."""
    r, g, b = (int(v) for v in image[0, 0])
    return r, (g << 8) | b


def _eye_boxes(dog: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = dog
    w, h = x2 - x1, y2 - y1
    side = EYE_SIDE * w
    cy = y1 + EYE_Y * h
    return np.array([[x1 + f * w - side / 2, cy - side / 2, x1 + f * w + side / 2, cy + side / 2] for f in EYE_X])


@dataclass
class _Dog:
    width: float
    centre: np.ndarray
    low: np.ndarray  # the centre's bounds
    high: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def box(self) -> np.ndarray:
        half = np.array([self.width / 2, 0.75 * self.width / 2])
        return np.concatenate([self.centre - half, self.centre + half])


class QualityScene:
    """One sequence: the truth of every frame, computed up front, and its frames rendered on demand."""

    def __init__(self, spec: QualitySceneSpec, sequence: int = 0) -> None:
        if not 0 < spec.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be 1..{MAX_FRAMES} (got {spec.frames}): the frame mark holds two bytes")
        if not 0 <= sequence <= 255:
            raise ValueError(f"sequence must be 0..255 (got {sequence}): the frame mark holds one byte")
        self.spec = spec
        self.sequence = sequence
        rng = np.random.default_rng([spec.seed, sequence])
        self.truth = self._simulate(rng)

    def _simulate(self, rng: np.random.Generator) -> list[FrameTruth]:
        spec = self.spec
        bands = [self._band(k) for k in range(spec.dogs)]
        widths = rng.uniform(*spec.dog_width_px, spec.dogs)
        dogs = [
            _Dog(w, rng.uniform(low, high), low=low, high=high) for w, (low, high) in zip(widths, bands, strict=True)
        ]
        cushion_w = rng.uniform(60, 80)
        corner = rng.uniform([0, 0.5 * spec.height], [spec.width - cushion_w, spec.height - 0.6 * cushion_w])
        cushion = np.array([corner[0], corner[1], corner[0] + cushion_w, corner[1] + 0.6 * cushion_w])
        centre, side = (cushion[:2] + cushion[2:]) / 2, 11.0
        button = np.concatenate([centre - side / 2, centre + side / 2])
        person = self._person_frames(rng)
        out = []
        for i in range(spec.frames):
            for dog in dogs:
                self._move(dog, rng)
            boxes = np.array([d.box() for d in dogs]).reshape(-1, 4)
            closed = rng.random(len(dogs)) < spec.closed_rate
            eyes = np.concatenate([_eye_boxes(b) for b in boxes]).reshape(-1, 4)
            out.append(FrameTruth(i, boxes, eyes, np.repeat(~closed, 2), cushion, button, self._person_box(person, i)))
        return out

    def _band(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Where dog ``k``'s centre may go: its own band of rows, the bands overlapping by a third, so dogs cross
        and partly cover each other now and then without sitting on top of each other."""
        spec = self.spec
        band = spec.height / spec.dogs
        margin = spec.dog_width_px[1] / 2 + 1
        top = max(k * band - band / 6, 0.375 * spec.dog_width_px[1] + 1)
        bottom = min((k + 1) * band + band / 6, spec.height - 0.375 * spec.dog_width_px[1] - 1)
        return np.array([margin, min(top, bottom)]), np.array([spec.width - margin, max(top, bottom)])

    def _move(self, dog: _Dog, rng: np.random.Generator) -> None:
        """Now and then pick a new velocity (a third of the time: rest), then move and bounce off the band's edges."""
        dt = 1.0 / self.spec.fps
        if rng.random() < 0.5 * dt:
            speed = 0.0 if rng.random() < 1 / 3 else rng.uniform(0.3, 1.0) * self.spec.speed_px_s
            angle = rng.uniform(0, 2 * np.pi)
            dog.velocity = speed * np.array([np.cos(angle), np.sin(angle)])
        dog.centre = dog.centre + dog.velocity * dt
        low, high = dog.low, dog.high
        bounced = (dog.centre < low) | (dog.centre > high)
        dog.velocity = np.where(bounced, -dog.velocity, dog.velocity)
        dog.centre = np.clip(dog.centre, low, high)

    def _person_frames(self, rng: np.random.Generator) -> tuple[int, int] | None:
        spec = self.spec
        if rng.random() >= spec.person_chance:
            return None
        start = int(rng.uniform(0.2, 0.7) * spec.frames)
        return start, start + max(1, round(rng.uniform(*spec.person_s) * spec.fps))

    def _person_box(self, span: tuple[int, int] | None, i: int) -> np.ndarray | None:
        """The person walks from the left border to the right one while in frame."""
        if span is None or not span[0] <= i < span[1]:
            return None
        w, h = 0.3 * self.spec.height, 0.85 * self.spec.height
        u = (i - span[0]) / max(span[1] - span[0] - 1, 1)
        x1 = u * (self.spec.width - w)
        return np.array([x1, 0.1 * self.spec.height, x1 + w, 0.1 * self.spec.height + h])

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as an RGB image (flat shapes) with its mark."""
        t = self.truth[i]
        image = np.full((self.spec.height, self.spec.width, 3), (110, 120, 100), dtype=np.uint8)
        _rect(image, t.cushion, (150, 110, 80))
        _ellipse(image, t.button, (60, 40, 30))
        for dog in t.dogs:
            _ellipse(image, dog, (170, 130, 90))
        for eye, is_open in zip(t.eyes, t.eye_open, strict=True):
            squint = np.array([0.0, 0.4, 0.0, -0.4]) * (eye[3] - eye[1])  # a closed eye is a slit
            _ellipse(image, eye if is_open else eye + squint, (20, 20, 20))
        if t.person is not None:
            _rect(image, t.person, (60, 80, 160))
        mark(image, self.sequence, i)
        return image

    def frames(self, stream: str) -> list[Frame]:
        """Every frame of the sequence as pipeline ``Frame`` objects of ``stream``."""
        step_s = 1.0 / self.spec.fps
        return [
            Frame(stream, i, i * step_s, T0 + timedelta(seconds=i * step_s), self.render(i), keyframe=i == 0)
            for i in range(self.spec.frames)
        ]


def _rect(image: np.ndarray, box: np.ndarray, colour: tuple[int, ...]) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, -1)


def _ellipse(image: np.ndarray, box: np.ndarray, colour: tuple[int, ...]) -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = (round((x1 + x2) / 2), round((y1 + y2) / 2))
    axes = (max(1, round((x2 - x1) / 2)), max(1, round((y2 - y1) / 2)))
    cv2.ellipse(image, centre, axes, 0, 0, 360, colour, -1)


class SceneBook:
    """The sequences of one benchmark run, found again from a frame's mark."""

    def __init__(self, scenes: list[QualityScene] | None = None) -> None:
        self._scenes = {s.sequence: s for s in scenes or []}

    def add(self, scene: QualityScene) -> None:
        if scene.sequence in self._scenes:
            raise ValueError(f"sequence {scene.sequence} is already in the book; give each scene its own number")
        self._scenes[scene.sequence] = scene

    def lookup(self, image: np.ndarray) -> tuple[FrameTruth, tuple[int, int]]:
        """The truth of the frame ``image`` and its ``(sequence, index)``; KeyError for an unmarked image."""
        sequence, index = read_mark(image)
        scene = self._scenes.get(sequence)
        if scene is None or index >= len(scene.truth):
            raise KeyError(f"image marked ({sequence}, {index}) is not a frame of this benchmark's sequences")
        return scene.truth[index], (sequence, index)
