"""Harvest treats the consecutive clips of one long track (pieces cut at ``tracking.clip_max_s``) as one track."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from streamlabel.config import Config
from streamlabel.store.clips import ClipWriter
from streamlabel.store.harvest import harvest_clips
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

CFG = Config.model_validate({"tracking": {"clip_pre_s": 0, "clip_post_s": 0}})


def piece(store, track_id: int, seqs: range, statuses: list[str], part: int, next_pts: float | None) -> None:
    results = []
    for seq, status in zip(seqs, statuses, strict=True):
        results.append(make_result("cam", seq, [status], when=T0 + timedelta(seconds=seq * 0.5), track_ids=[track_id]))
        store.write(results[-1], CONFIG_HASH)
    first, last = results[0].frame, results[-1].frame
    seg = TrackSegment("cam", track_id, "dog", first.pts, last.pts, first.time, last.time,
                       tuple(r.frame.frame_id for r in results), part, next_pts)  # fmt: skip
    assert ClipWriter(store, CFG).write(seg, None, [r.frame for r in results]) is not None


def test_the_pieces_of_a_track_are_harvested_together(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = new_store(root)
    piece(store, 4, range(0, 4), ["accepted", "review", "review", "review"], 0, 2.0)  # 1 accepted label
    piece(store, 4, range(4, 8), ["review"] * 4, 1, None)  # none: kept, its track has one
    piece(store, 5, range(20, 24), ["review"] * 4, 0, None)  # another track without any: left out
    store.close()
    report = harvest_clips(root, tmp_path / "out", min_labels=1)
    assert report.clips == 2
    clips = json.loads((tmp_path / "out" / "manifest.json").read_text())["clips"]
    assert [(c["track_id"], c["part"]) for c in clips] == [(4, 0), (4, 1)]
    assert clips[0]["track"] == clips[1]["track"] == clips[0]["clip_id"]
