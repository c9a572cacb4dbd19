"""How a sampled frame travels from a reader actor to a labeler actor: raw arrays or JPEG bytes.

``array`` keeps the pixels exactly (labels match the single-process daemon); ``jpeg`` sends about a tenth of the
bytes at the cost of an encode in the reader, a decode in the labeler and JPEG artefacts (``bench cluster``
measures both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from streamlabel.frames import Frame

JPEG_QUALITY = 90  # high enough that the detector sees what it would see in the raw frame


@dataclass(frozen=True, slots=True)
class PackedFrame:
    """A frame whose image is JPEG bytes (``Frame`` fields otherwise)."""

    stream: str
    seq: int
    pts: float
    time: datetime
    jpeg: bytes
    keyframe: bool = False


def pack(frame: Frame, transport: str) -> Frame | PackedFrame:
    """The frame as it goes into the object store: unchanged for ``array``, JPEG-encoded for ``jpeg``."""
    if transport == "array":
        return frame
    ok, buf = cv2.imencode(".jpg", frame.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"frame {frame.frame_id}: JPEG encoding failed (image shape {frame.image.shape})")
    return PackedFrame(frame.stream, frame.seq, frame.pts, frame.time, buf.tobytes(), frame.keyframe)


def unpack(item: Frame | PackedFrame) -> Frame:
    """The frame the labeler works on (RGB uint8)."""
    if isinstance(item, Frame):
        return item
    bgr = cv2.imdecode(np.frombuffer(item.jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    return Frame(item.stream, item.seq, item.pts, item.time, np.ascontiguousarray(bgr[:, :, ::-1]), item.keyframe)


def payload_bytes(item: Frame | PackedFrame) -> int:
    """Bytes of pixel data the item carries (what the object store moves between nodes)."""
    return len(item.jpeg) if isinstance(item, PackedFrame) else int(item.image.nbytes)
