"""Bounded segments: a track on screen longer than ``tracking.clip_max_s`` comes out as consecutive pieces of the
same track id as it goes (synthetic clock: hours of stream time in a few milliseconds), never all at its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest

from streamlabel.frames import Frame
from streamlabel.tracking.segments import SegmentBook

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
IMAGE = np.zeros((4, 4, 3), np.uint8)


def frame(seq: int, fps: float = 2.0) -> Frame:
    pts = seq / fps
    return Frame("cam", seq, pts, T0 + timedelta(seconds=pts), IMAGE)


def test_a_two_hour_track_is_cut_into_pieces_as_it_goes() -> None:
    book = SegmentBook(min_s=1.0, max_s=60.0)
    pieces, emitted_at = [], []
    n = 2 * 3600 * 2  # two hours at 2 fps
    for seq in range(n):
        f = frame(seq)
        book.see(f, [5], ["dog"])
        for seg in book.close(keep={5}):
            pieces.append(seg)
            emitted_at.append(f.pts)
    assert len(pieces) == 119  # the 120th piece is still open: it closes with the track
    pieces += book.close()
    assert len(pieces) == 120
    assert {p.track_id for p in pieces} == {5}
    assert [p.part for p in pieces] == list(range(120))
    assert all(p.duration_s <= 60.0 for p in pieces)
    for p, t in zip(pieces, emitted_at, strict=False):
        assert t == p.next_start_pts  # each piece came out at the frame that started the next one
    for a, b in pairwise(pieces):
        assert a.continues and a.next_start_pts == b.start_pts and b.start_pts > a.end_pts
    assert not pieces[-1].continues
    ids = [fid for p in pieces for fid in p.frame_ids]
    assert ids == [frame(s).frame_id for s in range(n)]  # every frame once, in order


@pytest.mark.parametrize("max_s", [0.0, 600.0])
def test_short_tracks_or_no_bound_give_one_segment(max_s: float) -> None:
    book = SegmentBook(min_s=1.0, max_s=max_s)
    for seq in range(200):  # 100 s
        book.see(frame(seq), [1], ["dog"])
        assert book.close(keep={1}) == []
    (seg,) = book.close()
    assert (seg.part, seg.next_start_pts, seg.duration_s) == (0, None, 99.5)


def test_a_short_last_piece_is_kept_and_a_short_track_is_not() -> None:
    book = SegmentBook(min_s=1.0, max_s=10.0)
    for seq in range(22):  # 0 .. 10.5 s: the piece closes at 10.5 s, the last one has a single frame
        book.see(frame(seq), [1], ["dog"])
    book.see(frame(0, fps=1e9), [2], ["dog"])  # a one-frame track of another dog: too short for a clip
    first = book.close(keep={1, 2})
    assert [(s.part, s.start_pts, s.end_pts, s.next_start_pts) for s in first] == [(0, 0.0, 10.0, 10.5)]
    last = book.close()
    assert [(s.track_id, s.part, s.start_pts) for s in last] == [(1, 1, 10.5)]
