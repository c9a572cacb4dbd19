"""TEST FIXTURES: a scripted validator that passes every candidate, and scripted stages (never product features).

The tiny random-weight VLM cannot produce a passing verdict, so the tests that need labels in the dataset swap in
this backend under the kind ``scripted``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv

from streamlabel.stages.base import Candidate, Verdict, register_backend


class PassingValidator:
    """Judges every candidate as passed with a fixed confidence."""

    model_id = "scripted-pass"

    def __init__(self, cfg: object, target: object, runtime: object, confidence: float = 0.9) -> None:
        self.checks = [c.name for c in target.validation.checks]  # type: ignore[attr-defined]
        self.confidence = confidence

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        return [
            Verdict(
                True,
                self.confidence,
                dict.fromkeys(self.checks, True),
                "scripted",
                self.model_id,
                confidence_source="stated",
            )
            for _ in items
        ]


def register() -> None:
    register_backend("validate", "scripted", PassingValidator)


# ------------------------------------------------------------------------------------------- scripted stages
# TEST FIXTURES: stages that read a frame index from the image and answer from a script, so that pipeline tests
# can assert exact tracker ids, grounding calls and consistency flags (random-weight models give random boxes).

MARK = (0, 0, 0)  # pixel holding the frame's script index


def frame_image(index: int, height: int = 120, width: int = 200) -> np.ndarray:
    """A black RGB image carrying ``index`` (0-255) in its top-left pixel."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[MARK] = index
    return image


def _index(image: np.ndarray) -> int:
    return int(image[MARK])


class ScriptedDetector:
    """Anchors per frame index from ``script`` (lists of xyxy boxes), class 16 ``dog``; with ``people`` (frame index
    -> confidence), one class 0 ``person`` box at the left edge of those frames too."""

    model_id = "scripted-detect"

    def __init__(self, script: dict[int, list[list[float]]], people: dict[int, float] | None = None) -> None:
        self.script = script
        self.people = people or {}

    def detect(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        out = []
        for image in images:
            boxes = np.array(self.script.get(_index(image), []), dtype=np.float32).reshape(-1, 4)
            n = len(boxes)
            found = sv.Detections(
                xyxy=boxes,
                confidence=np.full(n, 0.9, dtype=np.float32),
                class_id=np.full(n, 16, dtype=np.int64),
                data={"class_name": np.array(["dog"] * n, dtype=str)},
            )
            if _index(image) in self.people:
                person = sv.Detections(
                    xyxy=np.array([[0, 0, 15, 100]], dtype=np.float32),
                    confidence=np.array([self.people[_index(image)]], dtype=np.float32),
                    class_id=np.array([0], dtype=np.int64),
                    data={"class_name": np.array(["person"], dtype=str)},
                )
                found = sv.Detections.merge([found, person])
            out.append(found)
        return out


def eye_boxes(anchor: np.ndarray) -> list[list[float]]:
    """Two 10x10 eyes at fixed places inside an anchor box."""
    x1, y1 = float(anchor[0]), float(anchor[1])
    return [[x1 + 10, y1 + 10, x1 + 20, y1 + 20], [x1 + 30, y1 + 10, x1 + 40, y1 + 20]]


class ScriptedGrounder:
    """Two eyes in every anchor; counts the frames it was asked to ground."""

    model_id = "scripted-ground"

    def __init__(self) -> None:
        self.grounded: list[int] = []  # script index of every frame grounded, in call order

    def ground(self, images: Sequence[np.ndarray], anchors: Sequence[sv.Detections]) -> list[sv.Detections]:
        out = []
        for image, frame_anchors in zip(images, anchors, strict=True):
            self.grounded.append(_index(image))
            boxes, index = [], []
            for a, anchor in enumerate(frame_anchors.xyxy):
                boxes += eye_boxes(anchor)
                index += [a, a]
            n = len(boxes)
            out.append(
                sv.Detections(
                    xyxy=np.array(boxes, dtype=np.float32).reshape(n, 4),
                    confidence=np.full(n, 0.8, dtype=np.float32),
                    class_id=np.zeros(n, dtype=np.int64),
                    data={
                        "anchor_index": np.array(index, dtype=np.int64),
                        "class_name": np.array(["eye"] * n, dtype=str),
                        "phrase": np.array(["eye"] * n, dtype=str),
                    },
                )
            )
        return out


class ScriptedSegmenter:
    """Fills each part box; at the frame indices in ``jumps`` the mask lands ``jump_px`` to the right instead."""

    model_id = "scripted-segment"

    def __init__(self, jumps: set[int] = frozenset(), jump_px: int = 20) -> None:
        self.jumps = set(jumps)
        self.jump_px = jump_px

    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]:
        out = []
        for image, frame_parts in zip(images, parts, strict=True):
            h, w = image.shape[:2]
            shift = self.jump_px if _index(image) in self.jumps else 0
            masks = np.zeros((len(frame_parts), h, w), dtype=bool)
            polygons = np.empty(len(frame_parts), dtype=object)
            for j, (x1, y1, x2, y2) in enumerate(np.round(frame_parts.xyxy).astype(int)):
                masks[j, y1:y2, x1 + shift : x2 + shift] = True
                xs = (x1 + shift, x2 + shift)
                polygons[j] = np.array([[xs[0], y1], [xs[1], y1], [xs[1], y2], [xs[0], y2]], dtype=np.float32)
            done = sv.Detections(
                xyxy=frame_parts.xyxy,
                mask=masks,
                confidence=frame_parts.confidence,
                class_id=frame_parts.class_id,
                tracker_id=frame_parts.tracker_id,
                data=dict(frame_parts.data),
            )
            done.data["polygon"] = polygons
            done.data["mask_score"] = np.ones(len(frame_parts), dtype=np.float32)
            out.append(done)
        return out


class CountingValidator(PassingValidator):
    """PassingValidator that counts the candidates it judged."""

    def __init__(self, confidence: float = 0.9) -> None:
        self.checks = ["is_eye"]
        self.confidence = confidence
        self.judged = 0

    def validate(self, items: Sequence[Candidate]) -> list[Verdict]:
        self.judged += len(items)
        return super().validate(items)
