"""MOT sequences (bench.mot, bench.mot_scenes): gt.txt in and out, the generated street, the seeded detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamlabel.bench.mot import DetectorNoise, FrameTruth, MotSequence, detect, occluded_share, read_mot, write_mot
from streamlabel.bench.mot_scenes import StreetSpec, synthesize

SHORT = StreetSpec(seed=3, seconds=8.0)


def test_gt_txt_round_trips(tmp_path: Path) -> None:
    sequence = synthesize(SHORT)
    write_mot(sequence, tmp_path / "gt.txt")
    back = read_mot(tmp_path / "gt.txt", sequence.fps, "again")
    last = max(k for k, f in enumerate(sequence.frames) if len(f.ids)) + 1  # trailing empty frames leave no rows
    assert len(back.frames) == last and back.boxes == sequence.boxes
    for ours, theirs in zip(sequence.frames, back.frames, strict=False):
        np.testing.assert_array_equal(ours.ids, theirs.ids)
        np.testing.assert_allclose(ours.xyxy, theirs.xyxy, atol=0.02)


def test_read_keeps_pedestrians_only(tmp_path: Path) -> None:
    rows = [
        "1,1,10,20,30,60,1,1,1.0",  # MOT16+: a pedestrian
        "1,2,50,20,30,60,0,1,1.0",  # flag 0: ignored
        "1,3,90,20,30,60,1,3,1.0",  # a car: ignored
        "2,1,12,20,30,60,1,-1,-1,-1",  # MOT15: world coordinates at the end, kept
        "3,4,5,5,10,10,1,4.48,5.50,0",  # MOT15 with a world x that is not a class: kept
    ]
    (tmp_path / "gt.txt").write_text("\n".join(rows) + "\n")
    sequence = read_mot(tmp_path / "gt.txt", 25.0)
    assert [f.ids.tolist() for f in sequence.frames] == [[1], [1], [4]]
    np.testing.assert_allclose(sequence.frames[0].xyxy, [[10, 20, 40, 80]])
    assert sequence.name == tmp_path.name


def test_a_short_row_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "gt.txt").write_text("1,1,10,20,30,60,1,1,1\n2,1,10,20\n")
    with pytest.raises(ValueError, match=r"gt.txt:2: a MOT row needs"):
        read_mot(tmp_path / "gt.txt", 25.0)


def test_the_street_is_reproducible_and_busy() -> None:
    first, second = synthesize(SHORT), synthesize(SHORT)
    assert [f.ids.tolist() for f in first.frames] == [f.ids.tolist() for f in second.frames]
    np.testing.assert_array_equal(first.frames[100].xyxy, second.frames[100].xyxy)
    assert synthesize(StreetSpec(seed=4, seconds=8.0)).boxes != first.boxes
    full = synthesize(StreetSpec(seed=0))
    counts = [len(f.ids) for f in full.frames]
    assert len(full.frames) == 500 and max(counts) >= 5
    ids_per_frame = [set(f.ids.tolist()) for f in full.frames]
    entered = [k for k in range(1, 500) if ids_per_frame[k] - ids_per_frame[k - 1]]
    left = [k for k in range(1, 500) if ids_per_frame[k - 1] - ids_per_frame[k]]
    assert len(entered) >= 5 and len(left) >= 5  # people come and go
    hidden = np.concatenate([occluded_share(f.xyxy) for f in full.frames])
    assert (hidden > 0.85).mean() > 0.05  # people hide behind each other
    heights = np.concatenate([f.xyxy[:, 3] - f.xyxy[:, 1] for f in full.frames])
    assert heights.max() > 2 * heights.min()  # near and far


def test_occluded_share_counts_only_boxes_in_front() -> None:
    back, front = [0.0, 0.0, 10.0, 20.0], [5.0, 0.0, 15.0, 30.0]  # front: lower bottom edge, nearer the camera
    np.testing.assert_allclose(occluded_share(np.array([back, front])), [0.5, 0.0])
    assert occluded_share(np.zeros((0, 4))).shape == (0,)


def test_the_detector_is_seeded_and_misses_hidden_people_more() -> None:
    sequence = synthesize(SHORT)
    first, again, other = detect(sequence, 0), detect(sequence, 0), detect(sequence, 1)
    np.testing.assert_array_equal(first[50].xyxy, again[50].xyxy)
    assert any(len(a) != len(b) or not np.array_equal(a.xyxy, b.xyxy) for a, b in zip(first, other, strict=True))
    assert all(d.confidence.min() >= DetectorNoise().score_floor for d in first if len(d))

    person = FrameTruth(np.array([1, 2]), np.array([[0.0, 0.0, 40.0, 100.0], [0.0, 0.0, 40.0, 110.0]]))
    crowd = MotSequence("two", 25.0, [person] * 400)
    found = detect(crowd, 0, DetectorNoise(false_per_frame=0.0))
    share_found = np.mean([len(d) for d in found]) / 2
    assert 0.4 < share_found < 0.6  # the one in front (95 % found), the one behind never
