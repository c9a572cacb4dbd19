"""Synthetic scenes with known truth: a cartoon dog with two eyes moving over a textured floor.

Used by ``streamlabel selftest`` and by the tests. The pixels are not meant to fool a real detector; they give
the pipeline a clip whose every frame has a known anchor box and known part boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class SceneFrame:
    """Truth for one rendered frame: the anchor box and the part boxes (xyxy pixels), and the image (RGB)."""

    index: int
    image: np.ndarray = field(repr=False)
    anchor_xyxy: np.ndarray
    parts_xyxy: np.ndarray


@dataclass(frozen=True)
class SceneSpec:
    """Size and motion of a scene; the seed fixes the background texture and the path."""

    width: int = 320
    height: int = 240
    fps: int = 10
    seconds: float = 3.0
    dog_width: float = 0.4
    seed: int = 0

    @property
    def n_frames(self) -> int:
        return round(self.fps * self.seconds)


def _background(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(0, 40, size=(spec.height // 8 + 1, spec.width // 8 + 1, 3), dtype=np.uint8)
    tile = cv2.resize(noise, (spec.width, spec.height), interpolation=cv2.INTER_CUBIC)
    base = np.array([150, 170, 140], dtype=np.int16)
    return np.clip(base + tile.astype(np.int16), 0, 255).astype(np.uint8)


def render_frame(spec: SceneSpec, index: int, background: np.ndarray) -> SceneFrame:
    """Render frame ``index``: the dog walks left to right on a gentle wave."""
    img = background.copy()
    t = index / max(spec.n_frames - 1, 1)
    dw = int(spec.width * spec.dog_width)
    dh = int(dw * 0.75)
    cx = int(dw / 2 + t * (spec.width - dw))
    cy = int(spec.height / 2 + 0.1 * spec.height * np.sin(2 * np.pi * t))
    x1, y1 = cx - dw // 2, cy - dh // 2
    body = (70, 45, 25)
    cv2.ellipse(img, (cx, cy + dh // 8), (dw // 2, dh // 3), 0, 0, 360, body, -1)
    head_r = dh // 3
    hx, hy = cx + dw // 2 - head_r, y1 + head_r
    cv2.circle(img, (hx, hy), head_r, (110, 75, 40), -1)
    eye_r = max(2, head_r // 5)
    eyes = []
    for dx in (-head_r // 2.5, head_r // 2.5):
        ex, ey = int(hx + dx), int(hy - head_r // 6)
        cv2.circle(img, (ex, ey), eye_r, (245, 245, 235), -1)
        cv2.circle(img, (ex, ey), max(1, eye_r * 2 // 3), (15, 10, 5), -1)
        eyes.append([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r])
    anchor = np.array([x1, y1, x1 + dw, y1 + dh], dtype=np.float32)
    anchor = np.clip(anchor, 0, [spec.width, spec.height, spec.width, spec.height]).astype(np.float32)
    return SceneFrame(index, img, anchor, np.array(eyes, dtype=np.float32))


def render(spec: SceneSpec) -> list[SceneFrame]:
    """Every frame of the scene, in order."""
    rng = np.random.default_rng(spec.seed)
    bg = _background(spec, rng)
    return [render_frame(spec, i, bg) for i in range(spec.n_frames)]


def write_clip(spec: SceneSpec, path: Path, gop: int | None = None) -> list[SceneFrame]:
    """Encode the scene to an H.264 MP4 at ``path`` with PyAV and return its truth.

    Args:
        spec: the scene.
        path: output file (``.mp4``).
        gop: keyframe interval in frames; the encoder default when None.
    """
    import av

    frames = render(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(spec.fps))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        if gop:
            stream.codec_context.gop_size = gop
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f.image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return frames
