"""The events of one stored frame, built from the label rows the store writes to the manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from streamlabel.events.models import LabelEvent, PartInfo, RejectedEvent, ReviewEvent, VerdictInfo, utc_iso

FRAME_EVENT = {"dataset": LabelEvent, "review": ReviewEvent}


def part_info(row: dict[str, Any], width: int, height: int) -> PartInfo:
    """A label row (store/dataset.py) as the part of an event; box normalized like the polygon."""
    x1, y1, x2, y2 = json.loads(row["xyxy"])
    verdict = None
    if row.get("verdict_passed") is not None:
        verdict = VerdictInfo(
            passed=bool(row["verdict_passed"]),
            confidence=float(row["verdict_confidence"]),
            confidence_source=str(row.get("verdict_source") or "none"),
            checks=json.loads(row.get("verdict_checks") or "{}"),
            reason=str(row.get("verdict_reason") or ""),
            model=str(row.get("verdict_model") or ""),
            reused=bool(row.get("verdict_reused")),
        )
    return PartInfo(
        class_name=row["class_name"],
        status=row["status"],
        track_id=row.get("track_id"),
        polygon=json.loads(row["polygon"]),
        box=[round(x1 / width, 6), round(y1 / height, 6), round(x2 / width, 6), round(y2 / height, 6)],
        anchor_class=str(row.get("anchor_class") or ""),
        verdict=verdict,
    )


def rejection_reason(part: PartInfo) -> str:
    """One line on why a part was rejected: its failed checks and the model's reason."""
    if part.verdict is None:
        return "no verdict"
    failed = [name for name, ok in part.verdict.checks.items() if not ok]
    head = f"failed: {', '.join(failed)}" if failed else "not passed"
    return f"{head}; {part.verdict.reason}" if part.verdict.reason else head


def frame_events(
    frame: dict[str, Any], rows: Sequence[dict[str, Any]], publish_rejected: bool = False
) -> list[LabelEvent | ReviewEvent | RejectedEvent]:
    """Events of a stored frame: a label (dataset) or review event, plus a rejected one when asked for.

    ``frame`` is the store's frame row (``split``, ``time``, ``image``...); pending frames give no event yet: they
    get one when they are judged.
    """
    split, width, height = frame["split"], frame["width"], frame["height"]
    time = utc_iso(datetime.fromisoformat(frame["time"]))
    common = {"stream": frame["stream"], "time": time, "frame_id": frame["frame_id"]}
    events: list[LabelEvent | ReviewEvent | RejectedEvent] = []
    # The frame's main copy, then the copy beside a dataset copy that waits for a person (``hold``, store.md).
    copies = [(split, "image", "label", "idx"), (frame.get("hold"), "hold_image", "hold_label", "hold_idx")]
    for kind, image, label, line in copies:
        if kind not in FRAME_EVENT:
            continue
        in_file = sorted((r for r in rows if r.get(line, -1) >= 0), key=lambda r: r[line])
        events.append(
            FRAME_EVENT[kind](
                **common,
                seq=frame["seq"],
                pts=frame["pts"],
                width=width,
                height=height,
                image=frame[image],
                label=frame[label],
                parts=[part_info(r, width, height) for r in in_file],
            )
        )
    rejected = [part_info(r, width, height) for r in rows if r["status"] == "rejected"]
    if publish_rejected and rejected and split != "pending":
        events.append(RejectedEvent(**common, reasons=[rejection_reason(p) for p in rejected], parts=rejected))
    return events
