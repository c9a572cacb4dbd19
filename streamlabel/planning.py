"""Which parts of a batch go to the validator and which reuse their track's verdict, in runs of frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from supervision.config import CLASS_NAME_DATA_FIELD

from streamlabel.batch import Perceived
from streamlabel.checks import Checklist
from streamlabel.frames import ANCHOR_INDEX_KEY, FrameResult
from streamlabel.judging import Plan
from streamlabel.stages.base import Candidate, Verdict
from streamlabel.tracking.tracker import UNCONFIRMED


def plan_run(
    batch: Perceived,
    start: int,
    reusable: Callable[[FrameResult], list[Verdict | None]],
    checklist: Checklist,
    part_name: str,
    reuse: bool,
) -> tuple[Plan, int]:
    """Split the parts of a run of frames from ``start`` into candidates for the validator and parts whose
    track's verdict is reused (``reusable`` gives, per part, the verdict it may reuse or None); returns the plan and
    where the run ends.

    With ``reuse`` on, the run ends before the first frame with a part whose track already sends a candidate in the
    run: that part is planned after the earlier verdict is decided, so it may reuse it (as with one frame per
    batch). Frames the detector rejected send nothing; a frame whose parts would all be reused while a frame-scope
    check needs the VLM sends its first part anyway.
    """
    plan, judged = Plan(), set()  # judged: (stream, part track) with a candidate in this run
    for i in range(start, len(batch.results)):
        r = batch.results[i]
        ids = [(r.frame.stream, int(p)) for p in (r.parts.tracker_id if r.parts.tracker_id is not None else [])]
        if batch.failures[i] is not None:
            continue
        if reuse and judged.intersection(ids):
            return plan, i
        reused = reusable(r)
        rows = [j for j in range(len(r.parts)) if reused[j] is None]
        plan.reused |= {(i, j): v for j, v in enumerate(reused) if v is not None}
        if not rows and len(r.parts) and checklist.frame_needs_vlm:
            rows.append(0)
            del plan.reused[(i, 0)]
        _add_candidates(plan, r, i, rows, part_name)
        judged.update(ids[j] for j in rows if ids and ids[j][1] != UNCONFIRMED)
    return plan, len(batch.results)


def _add_candidates(plan: Plan, r: FrameResult, i: int, rows: list[int], part_name: str) -> None:
    """The parts ``rows`` of frame ``i`` as validator candidates, with their anchor's box and class."""
    names = r.anchors.data.get(CLASS_NAME_DATA_FIELD, np.array(["object"] * len(r.anchors)))
    for j in rows:
        a = int(r.parts.data[ANCHOR_INDEX_KEY][j])
        plan.candidates.append(Candidate(r.frame.image, r.parts[j], r.anchors.xyxy[a], str(names[a]), part_name))
        plan.owners.append((i, j))
