"""The records of one stored frame: the manifest's frame row a write starts from (``frame_row``), and the
``StoredFrame`` that a write or a re-render returns (``stored_frame``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlabel.frames import FrameResult


@dataclass(frozen=True)
class StoredFrame:
    """What the store wrote for one frame: its main copy and, beside a dataset copy, the copy that waits."""

    frame_id: str
    split: str
    image: Path | None
    label: Path | None
    labels: int
    event_ids: tuple[str, ...] = ()
    hold: str | None = None
    hold_image: Path | None = None
    hold_label: Path | None = None
    background: bool = False


def frame_row(result: FrameResult, config_hash: str, background: bool) -> dict[str, Any]:
    """The frame's manifest row before its copies are laid out (``frame_files.lay_out`` adds the copy columns)."""
    f = result.frame
    return {
        "frame_id": f.frame_id,
        "stream": f.stream,
        "seq": f.seq,
        "pts": f.pts,
        "time": f.time.isoformat(),
        "width": f.width,
        "height": f.height,
        "config_hash": config_hash,
        "background": int(background),
    }


def stored_frame(root: Path, frame: dict[str, Any], rows: list[dict[str, Any]], event_ids: list[str]) -> StoredFrame:
    """The ``StoredFrame`` of a laid-out frame row and its label rows, with paths under the store ``root``."""

    def path(rel: str | None) -> Path | None:
        return None if rel is None else root / rel

    return StoredFrame(
        frame["frame_id"],
        frame["split"],
        path(frame["image"]),
        path(frame["label"]),
        sum(1 for r in rows if r["idx"] >= 0),
        tuple(event_ids),
        frame.get("hold"),
        path(frame.get("hold_image")),
        path(frame.get("hold_label")),
        bool(frame.get("background")),
    )
