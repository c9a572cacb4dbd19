"""Clips honour ``privacy.people``: people pixelated in re-encoded clips (between samples too), drop writes nothing,
clips without people stay remuxed. Real PyAV files; the person boxes are the scene's truth at the sampled frames."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.daemon.clips import ClipCutter
from streamlabel.frames import Frame
from streamlabel.store.clip_pending import add_pending, pending_people
from streamlabel.store.clip_people import PeopleSpan
from streamlabel.store.clips import ClipWriter
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import T0, new_store

FPS = 10
SAMPLE_EVERY = 5  # the reader samples 2 fps of the 10 fps file
W, H = 320, 240
PERSON_Y = (100, 200)
PERSON_W = 40
SPEED_PX = 20  # per video frame: 100 px between two sampled frames, more than the person is wide
PERSON_FRAMES = range(10, 21)  # the person walks through from 1.0 s to 2.0 s


def person_box(i: int) -> np.ndarray | None:
    """The true person box of video frame ``i`` (None when nobody is in frame)."""
    if i not in PERSON_FRAMES:
        return None
    x1 = 40 + SPEED_PX * (i - PERSON_FRAMES[0])
    return np.array([x1, PERSON_Y[0], x1 + PERSON_W, PERSON_Y[1]], np.float64)


def render(i: int, person: bool = True) -> np.ndarray:
    """A smooth background, a static textured blob (the dog) at the top, and a checkerboard person (4 px squares)."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([60 + xx * 0.3, 80 + yy * 0.3, np.full_like(xx, 110.0)], axis=-1).astype(np.uint8)
    image[20:70, 200:300] = (170, 120, 60)
    box = person_box(i) if person else None
    if box is not None:
        x1, y1, x2, y2 = box.astype(int)
        checker = ((np.mgrid[y1:y2, x1:x2] // 4).sum(axis=0) % 2 * 255).astype(np.uint8)
        image[y1:y2, x1:x2] = checker[..., None]
    return image


def write_source(path: Path, person: bool) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"g": str(FPS), "crf": "12"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(4 * FPS):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(render(i, person), format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("src") / "person.mp4", person=True)


@pytest.fixture(scope="module")
def empty_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("src") / "nobody.mp4", person=False)


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def segment(start_pts: float = 1.0, end_pts: float = 2.0) -> TrackSegment:
    return TrackSegment(
        "cam", 3, "dog", start_pts, end_pts, T0 + timedelta(seconds=start_pts), T0 + timedelta(seconds=end_pts), ()
    )


def config(people: str) -> Config:
    return Config.model_validate({"tracking": {"clip_pre_s": 0.5, "clip_post_s": 0.5}, "privacy": {"people": people}})


def feed_samples(writer: ClipWriter, person: bool = True) -> None:
    """What the runner hands over for each sampled frame: its time and the detector's person boxes."""
    for i in range(0, 4 * FPS, SAMPLE_EVERY):
        box = person_box(i) if person else None
        writer.people.add("cam", i / FPS, None if box is None else box[None])


def region_diff(a: np.ndarray, b: np.ndarray, box: np.ndarray) -> float:
    x1, y1, x2, y2 = box.astype(int)
    return float(np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2].astype(int)).mean())


def test_a_clip_with_a_person_is_reencoded_with_the_person_pixelated_between_samples_too(
    source: Path, tmp_path: Path
) -> None:
    store = new_store(tmp_path / "store")
    writer = ClipWriter(store, config("blur"))
    feed_samples(writer)
    record = writer.write(segment(), str(source))
    assert record is not None and record.method == "blur" and record.codec == "h264"
    assert (record.start_pts, record.end_pts) == (pytest.approx(0.5), pytest.approx(2.5))
    clip, original = frames_of(record.path), frames_of(source)[5:26]  # 0.5 s to 2.5 s, every video frame
    assert len(clip) == len(original) == 21
    for k, (got, was) in enumerate(zip(clip, original, strict=True)):
        box = person_box(k + 5)
        if box is not None:  # sampled (1.0, 1.5, 2.0 s) or between two samples: the checkerboard is gone
            assert region_diff(got, was, box) > 40, f"frame {k + 5} keeps the person's detail"
        above = np.array([0, 0, W, PERSON_Y[0] - 12], np.float64)  # the dog and the background, clear of any box
        assert region_diff(got, was, above) < 3.0, f"frame {k + 5} changed outside the person"
    side = json.loads(record.sidecar.read_text())
    assert side["method"] == "blur"
    (row,) = store.manifest.query("SELECT method FROM clips")
    assert row["method"] == "blur"
    store.close()


def test_drop_writes_no_clip_with_a_person_and_counts_it_once_logged(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = new_store(tmp_path / "store")
    writer = ClipWriter(store, config("drop"))
    feed_samples(writer)
    with caplog.at_level(logging.INFO, logger="streamlabel.store.clips"):
        assert writer.write(segment(), str(source)) is None
        assert writer.write(segment(1.2, 2.2), str(source)) is None
    assert writer.private_dropped["cam"] == 2
    assert sum("privacy.people: drop" in r.getMessage() for r in caplog.records) == 1
    assert not store.manifest.query("SELECT 1 FROM clips") and not list(store.root.glob("clips/**/*"))
    assert not store.manifest.query("SELECT 1 FROM outbox WHERE kind = 'clip'")
    # A clip of the same stream without anyone in its range is still written (remuxed).
    late = writer.write(segment(3.0, 3.2), str(source))
    assert late is not None and late.method == "remux"
    store.close()


@pytest.mark.parametrize("people", ["blur", "drop", "keep"])
def test_a_clip_without_people_stays_remuxed(empty_source: Path, tmp_path: Path, people: str) -> None:
    store = new_store(tmp_path / "store")
    writer = ClipWriter(store, config(people))
    feed_samples(writer, person=False)
    record = writer.write(segment(), str(empty_source))
    assert record is not None and record.method == "remux"
    store.close()


def test_keep_remuxes_a_clip_with_a_person(source: Path, tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    writer = ClipWriter(store, config("keep"))
    feed_samples(writer)
    record = writer.write(segment(), str(source))
    assert record is not None and record.method == "remux"
    store.close()


def test_live_clips_encode_the_sampled_frames_with_people_pixelated(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    writer = ClipWriter(store, config("blur"))
    feed_samples(writer)
    frames = [Frame("cam", i, i / FPS, T0 + timedelta(seconds=i / FPS), render(i)) for i in range(0, 40, SAMPLE_EVERY)]
    record = writer.write(segment(), "rtsp://cam.local/live", frames)
    assert record is not None and record.method == "blur"
    clip = frames_of(record.path)
    chosen = [f for f in frames if 0.5 <= f.pts <= 2.5]
    assert len(clip) == len(chosen) == 5
    for got, f in zip(clip, chosen, strict=True):
        box = person_box(f.seq)
        if box is not None:
            assert region_diff(got, f.image, box) > 40
    store.close()


def test_a_pending_clip_keeps_its_people_for_the_next_start(source: Path, tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    first = ClipWriter(store, config("blur"))
    feed_samples(first)
    seg = segment()
    add_pending(store, seg, str(source), first.people_for(seg))
    recorded = pending_people(store, "cam_20261122T100001000Z_t3")
    assert recorded is not None and recorded.person_samples == 3
    # The next start has no timeline yet: the writer uses what the pending row recorded.
    record = ClipWriter(store, config("blur")).write(seg, str(source))
    assert record is not None and record.method == "blur"
    assert pending_people(store, record.clip_id) is None  # the row is gone once the clip is written
    store.close()


def test_the_clip_cutter_hands_the_runners_person_boxes_to_the_clip(source: Path, tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    cutter = ClipCutter(store, config("blur"))
    for i in range(0, 4 * FPS, SAMPLE_EVERY):
        box = person_box(i)
        frame = Frame("cam", i // SAMPLE_EVERY, i / FPS, T0 + timedelta(seconds=i / FPS), render(i))
        cutter.remember(frame, str(source), people_xyxy=None if box is None else box[None])
    assert cutter.cut([segment()]) == 1
    assert cutter.close(30.0)
    (row,) = store.manifest.query("SELECT method FROM clips")
    assert row["method"] == "blur"
    store.close()


def test_the_rule_between_samples_holds_and_joins_the_boxes() -> None:
    a, b = np.array([[0.0, 0, 10, 10]]), np.array([[100.0, 0, 110, 10]])
    samples = [[1.0, a.tolist()], [1.5, b.tolist()], [2.0, []]]
    span = PeopleSpan.from_json(json.dumps({"start_s": 0.0, "end_s": 3.0, "samples": samples}))
    np.testing.assert_array_equal(span.boxes_at(1.0), a)  # at a sample: its own boxes
    between = span.boxes_at(1.2)
    assert any(np.array_equal(box, [0, 0, 110, 10]) for box in between)  # the hull of the walk
    assert len(span.boxes_at(1.7)) == 1  # the person left by 2.0 s: the 1.5 s box is held until then
    assert len(span.boxes_at(2.0)) == 0 and len(span.boxes_at(9.0)) == 0
    np.testing.assert_array_equal(span.boxes_at(0.2), a)  # before the first sample: held
    assert PeopleSpan.from_json(span.to_json()).boxes_at(1.2).tolist() == between.tolist()
    assert not PeopleSpan().has_people and PeopleSpan().boxes_at(1.0).shape == (0, 4)
    # A range that starts at or after the first sample without a person has nobody in it.
    assert span.has_people and not PeopleSpan(span.samples, 2.0, 3.0).has_people
    assert PeopleSpan(span.samples, 1.9, 3.0).has_people  # 1.9 s lies between 1.5 and 2.0 s: the box is held
