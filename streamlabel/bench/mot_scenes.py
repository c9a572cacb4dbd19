"""Generated pedestrian sequences in MOT form, from a seed: a street seen from ground level.

People enter at the left or right edge (a few are there from the start) and walk across at 0.8-1.6 m/s, some in
pairs side by side; their box height follows the depth of their feet (nearer is lower in the image, bigger and
faster), they drift in depth, turn, stop and walk on, cross each other and hide each other. A box is kept while at
least a quarter of it is inside the image. Real sequences differ (``mot.bundled_sequences`` has two), but this one
gives as many crossings and occlusions as wanted with exact truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from streamlabel.bench.mot import FrameTruth, MotSequence

log = logging.getLogger(__name__)

PERSON_HEIGHT_M = 1.7
ASPECT = 0.4  # box width / height of a walking person
HORIZON = 0.4  # image height share of the horizon line
TURNS_PER_S = 1 / 6  # mean rate of a change of heading (a turn or a stop)
MIN_VISIBLE = 0.25  # share of a box that must be inside the image


@dataclass(frozen=True)
class StreetSpec:
    """The generated street: size, length, crowd; ``seed`` fixes everything else."""

    seed: int = 0
    seconds: float = 20.0
    fps: float = 25.0
    width: int = 960
    height: int = 540
    people: int = 16
    pair_share: float = 0.3


@dataclass
class _Walker:
    """One person's state: ``x`` centre and ``foot`` (bottom edge) in pixels, speed in metres per second."""

    x: float
    foot: float
    speed_m_s: float
    heading: float  # +1 right, -1 left, 0 standing
    drift: float  # foot velocity, image heights per second
    start_s: float
    seen: bool = False
    gone: bool = False


def box_height(spec: StreetSpec, foot: float) -> float:
    """Box height (pixels) of a person whose feet are at image row ``foot``: proportional to the depth below the
    horizon."""
    return 1.2 * (foot - HORIZON * spec.height)


def synthesize(spec: StreetSpec | None = None) -> MotSequence:
    """The street of ``spec`` as a ``MotSequence`` named ``street-<seed>``; the same spec gives the same boxes."""
    spec = spec or StreetSpec()
    rng = np.random.default_rng(spec.seed)
    walkers = _crowd(spec, rng)
    dt = 1.0 / spec.fps
    frames = []
    for k in range(round(spec.seconds * spec.fps)):
        t = k * dt
        ids, boxes = [], []
        for obj, walker in enumerate(walkers, start=1):
            if walker.gone or t < walker.start_s:
                continue
            box = _box(spec, walker)
            visible = _visible_share(spec, box)
            if visible >= MIN_VISIBLE:
                walker.seen = True
                ids.append(obj)
                boxes.append(np.clip(box, 0, [spec.width, spec.height, spec.width, spec.height]))
            elif walker.seen:
                walker.gone = True
            _step(spec, walker, rng, dt)
        frames.append(FrameTruth(np.array(ids, dtype=int), np.array(boxes, dtype=np.float64).reshape(-1, 4)))
    return MotSequence(f"street-{spec.seed}", spec.fps, frames)


def _crowd(spec: StreetSpec, rng: np.random.Generator) -> list[_Walker]:
    """Everyone who will walk by: start times spread over the sequence, a share walking in pairs."""
    walkers: list[_Walker] = []
    while len(walkers) < spec.people:
        foot = rng.uniform(0.55, 0.97) * spec.height
        heading = float(rng.choice([-1.0, 1.0]))
        start_s = float(rng.uniform(-0.2, 0.75) * spec.seconds)
        half = ASPECT * box_height(spec, foot) / 2
        if start_s <= 0:  # there from the start, somewhere in the image
            x, start_s = float(rng.uniform(half, spec.width - half)), 0.0
        else:
            x = -half if heading > 0 else spec.width + half
        walker = _Walker(x, foot, float(rng.uniform(0.8, 1.6)), heading, float(rng.normal(0, 0.01)), start_s)
        walkers.append(walker)
        if rng.random() < spec.pair_share and len(walkers) < spec.people:
            offset = -heading * 2.2 * half  # a companion a little behind, slightly further away or nearer
            walkers.append(
                _Walker(x + offset, foot + rng.normal(0, 0.02) * spec.height, walker.speed_m_s, heading, 0.0, start_s)
            )
    return walkers


def _box(spec: StreetSpec, walker: _Walker) -> np.ndarray:
    h = box_height(spec, walker.foot)
    w = ASPECT * h
    return np.array([walker.x - w / 2, walker.foot - h, walker.x + w / 2, walker.foot])


def _visible_share(spec: StreetSpec, box: np.ndarray) -> float:
    inside_w = max(0.0, min(box[2], spec.width) - max(box[0], 0.0))
    inside_h = max(0.0, min(box[3], spec.height) - max(box[1], 0.0))
    return inside_w * inside_h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def _step(spec: StreetSpec, walker: _Walker, rng: np.random.Generator, dt: float) -> None:
    """Move one walker by ``dt`` seconds, sometimes turning, stopping or walking on."""
    if rng.random() < TURNS_PER_S * dt:
        choice = rng.random()
        if walker.heading == 0 or choice < 0.5:
            walker.heading = float(rng.choice([-1.0, 1.0])) if walker.heading == 0 else walker.heading
            walker.drift = float(rng.normal(0, 0.04))  # a diagonal turn
        elif choice < 0.75:
            walker.heading = -walker.heading  # turns back
        else:
            walker.heading = 0.0  # stops
    pixels_per_m = box_height(spec, walker.foot) / PERSON_HEIGHT_M
    walker.x += walker.heading * walker.speed_m_s * pixels_per_m * dt
    walker.foot += walker.drift * spec.height * dt
    low, high = 0.5 * spec.height, 0.99 * spec.height
    if not low <= walker.foot <= high:
        walker.foot = min(max(walker.foot, low), high)
        walker.drift = -walker.drift
