"""Hand-made stores for the store tests: textured frames with elliptic parts written through DatasetStore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from streamlabel.frames import FLAGGED_KEY, REJECTION_KEY, Frame, FrameResult
from streamlabel.stages.base import Verdict
from streamlabel.store import DatasetStore

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
CONFIG_HASH = "c0ffee"


def ellipse_polygon(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """A closed ellipse outline as a float32 (K, 2) pixel polygon."""
    pts = cv2.ellipse2Poly((int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 20)
    return pts[:-1].astype(np.float32)


def make_result(
    stream: str,
    seq: int,
    statuses: list[str],
    *,
    when: datetime | None = None,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
    track_ids: list[int] | None = None,
    flagged: list[bool] | None = None,
    rejections: list[str] | None = None,
    anchored: bool = True,
    people: int = 0,
    part_width: float = 0.12,
) -> FrameResult:
    """A frame (noise background, one dark ellipse per part) and its parts with the given statuses.

    ``flagged`` and ``rejections`` set the parts' FLAGGED_KEY and REJECTION_KEY (left out when None);
    ``anchored`` False gives a frame without an anchor, ``people`` that many person boxes; ``part_width`` is an
    ellipse's half-width as a share of the frame width (parts overlap when it is large for their number).
    """
    rng = np.random.default_rng(seed * 1000 + seq)
    h, w = size
    image = rng.integers(90, 200, (h, w, 3), dtype=np.uint8)
    n = len(statuses)
    polygons = np.empty(n, dtype=object)
    boxes = np.zeros((n, 4), np.float32)
    for k in range(n):
        cx = w * (0.25 + 0.5 * k / max(n, 1)) + rng.uniform(-4, 4)
        cy = h * 0.5 + rng.uniform(-6, 6)
        poly = ellipse_polygon(cx, cy, w * part_width, h * 0.15)
        cv2.fillPoly(image, [poly.astype(np.int32)], (20, 30, 160))
        polygons[k] = poly
        boxes[k] = [*poly.min(axis=0), *poly.max(axis=0)]
    verdicts = np.empty(n, dtype=object)
    verdicts[:] = [
        Verdict(s != "rejected", 0.9, {"open": s != "rejected"}, "ok", "vlm", 0.1, "stated") for s in statuses
    ]
    parts = sv.Detections(
        xyxy=boxes,
        confidence=np.full(n, 0.6),
        class_id=np.zeros(n, int),
        tracker_id=None if track_ids is None else np.asarray(track_ids, int),
        data={
            "anchor_index": np.zeros(n, int),
            "polygon": polygons,
            "status": np.array(statuses, dtype=object),
            "verdict": verdicts,
            "mask_score": np.full(n, 0.8),
        },
    )
    if flagged is not None:
        parts.data[FLAGGED_KEY] = np.asarray(flagged, dtype=bool)
    if rejections is not None:
        parts.data[REJECTION_KEY] = np.array(rejections, dtype=object)
    anchors = sv.Detections(
        xyxy=np.array([[2, 2, w - 2, h - 2]], np.float32),
        confidence=np.array([0.9]),
        class_id=np.array([16]),
        data={"class_name": np.array(["dog"])},
    )
    if not anchored:
        anchors = sv.Detections.empty()
    boxes_people = np.array([[0, 0, w / 4, h / 2]] * people, np.float32).reshape(-1, 4)
    persons = sv.Detections(xyxy=boxes_people, confidence=np.full(people, 0.9), class_id=np.zeros(people, int))
    when = when or T0 + timedelta(seconds=seq * 0.5)
    frame = Frame(stream, seq, seq * 0.5, when, image, seq % 10 == 0)
    return FrameResult(frame, anchors, parts, persons)


def new_store(root: Path, keep_rejected: bool = False) -> DatasetStore:
    """An empty store with one class (``eye``) and its run recorded."""
    store = DatasetStore(root, ["eye"], jpeg_quality=90, keep_rejected=keep_rejected)
    store.manifest.record_run(CONFIG_HASH, {"test": True}, {"detect": "none"})
    return store


def fill_store(
    store: DatasetStore, stream: str, statuses: list[list[str]], start: datetime = T0, step_s: float = 0.5
) -> list[str]:
    """Write one frame per entry of ``statuses``, ``step_s`` apart; returns their frame ids."""
    ids = []
    for seq, st in enumerate(statuses):
        res = make_result(stream, seq, st, when=start + timedelta(seconds=seq * step_s), track_ids=[1] * len(st))
        store.write(res, CONFIG_HASH)
        ids.append(res.frame.frame_id)
    return ids
