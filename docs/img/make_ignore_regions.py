"""Draws docs/img/ignore-regions.png: one synthetic frame written through DatasetStore, dataset copy vs review copy.

Run from the repository root: ``.venv/bin/python docs/img/make_ignore_regions.py``. The frame has four eye
candidates: accepted, review, rejected as a poor label, rejected as not the target. The picture shows the two
files the store wrote, with each copy's label-file polygons outlined (green) and the part boxes named.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from streamlabel.frames import FLAGGED_KEY, REJECTION_KEY, Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store import DatasetStore

OUT = Path(__file__).with_name("ignore-regions.png")
PARTS = [("accepted", ""), ("review", ""), ("rejected", "poor_label"), ("rejected", "not_target")]
NAMES = ["accepted", "review", "poor_label", "not_target"]
W, H = 480, 200


def synthetic_result() -> FrameResult:
    """A textured frame with a brown 'dog' and four dark elliptic 'eyes', one per status."""
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal(150, 18, (H, W, 3)), 0, 255).astype(np.uint8)
    cv2.ellipse(image, (W // 2, H // 2), (W // 2 - 20, H // 2 - 20), 0, 0, 360, (150, 100, 60), -1)
    polygons, boxes = [], []
    for k in range(4):
        cx, cy = 80 + k * 107, H // 2 - 10 + (k % 2) * 20
        poly = cv2.ellipse2Poly((cx, cy), (26, 16), 0, 0, 360, 15)[:-1].astype(np.float32)
        cv2.fillPoly(image, [poly.astype(np.int32)], (25, 20, 15))
        cv2.circle(image, (cx + 6, cy - 4), 4, (240, 240, 240), -1)
        polygons.append(poly)
        boxes.append([*poly.min(axis=0), *poly.max(axis=0)])
    poly_arr = np.empty(4, dtype=object)
    poly_arr[:] = polygons
    verdicts = np.empty(4, dtype=object)
    verdicts[:] = [Verdict(s != "rejected", 0.9 if s == "accepted" else 0.5, {}, "", "figure", 0.0) for s, _ in PARTS]
    parts = sv.Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.full(4, 0.6),
        class_id=np.zeros(4, int),
        data={
            "anchor_index": np.zeros(4, int),
            "polygon": poly_arr,
            "status": np.array([s for s, _ in PARTS], dtype=object),
            "verdict": verdicts,
            FLAGGED_KEY: np.zeros(4, bool),
            REJECTION_KEY: np.array([r for _, r in PARTS], dtype=object),
        },
    )
    anchors = sv.Detections(xyxy=np.array([[20, 20, W - 20, H - 20]], np.float32), class_id=np.array([16]))
    frame = Frame("kitchen", 0, 0.0, datetime(2026, 11, 22, 10, tzinfo=UTC), image)
    return FrameResult(frame, anchors, parts)


def panel(image_path: Path, label_path: Path, title: str, boxes: np.ndarray) -> np.ndarray:
    """One copy as stored, with its label file's polygons outlined and the candidates named."""
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    for line in label_path.read_text().splitlines():
        _, poly = parse_yolo_line(line)
        cv2.polylines(img, [np.round(poly * [W, H]).astype(np.int32)], True, (0, 220, 0), 2)
    for name, (x1, _, _, y2) in zip(NAMES, boxes, strict=True):
        cv2.putText(img, name, (int(x1) - 12, int(y2) + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    head = np.full((30, W, 3), 40, np.uint8)
    cv2.putText(head, title, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return np.vstack([head, img])


def main() -> None:
    result = synthetic_result()
    with tempfile.TemporaryDirectory() as tmp:
        store = DatasetStore(Path(tmp), ["eye"])
        store.manifest.record_run("figure", {}, {})
        stored = store.write(result, "figure")
        store.close()
        assert stored is not None and stored.hold_image is not None and stored.hold_label is not None
        left = panel(
            stored.image, stored.label, "dataset copy (images/...): 1 label, 2 ignore regions", result.parts.xyxy
        )
        right = panel(
            stored.hold_image, stored.hold_label, "review copy (review/images/...): unpainted", result.parts.xyxy
        )
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    cv2.imwrite(str(OUT), np.hstack([left, gap, right]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {OUT} ({OUT.stat().st_size / 1000:.0f} KB)")


if __name__ == "__main__":
    main()
