"""Clips: remux keeps the source packets, the encode path writes playable H.264, sidecar and event agree."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from streamlabel.config import Config
from streamlabel.frames import Frame
from streamlabel.store.clips import ClipWriter, clip_id_of
from streamlabel.tracking.segments import TrackSegment
from tests.store.synthetic import CONFIG_HASH, T0, make_result, new_store

FPS = 10
GOP = 10  # a keyframe every second


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s H.264 file (10 fps, keyframe every 10 frames, B-frames on) of a moving square."""
    path = tmp_path_factory.mktemp("src") / "source.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"g": str(GOP), "keyint_min": str(GOP), "bf": "2"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(4 * FPS):
            img = np.full((120, 160, 3), 60, np.uint8)
            img[40:80, 4 * i : 4 * i + 30] = (200, 120, 40)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def packets(path: Path) -> list[tuple[float, bytes, bool]]:
    """(pts seconds from the first frame, bytes, keyframe) of every video packet, in decode order."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        origin = v.start_time or 0
        return [
            (float((p.pts - origin) * v.time_base), bytes(p), p.is_keyframe)
            for p in c.demux(v)
            if p.size and p.pts is not None
        ]


def decoded(path: Path) -> tuple[str, list[float]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.codec_context.name, [float(f.time) for f in c.decode(v)]


def segment(start_pts: float, end_pts: float, frame_ids: tuple[str, ...] = ()) -> TrackSegment:
    return TrackSegment(
        "cam", 7, "dog", start_pts, end_pts, T0 + timedelta(seconds=start_pts), T0 + timedelta(seconds=end_pts),
        frame_ids,
    )  # fmt: skip


def config(pre: float, post: float) -> Config:
    return Config.model_validate({"tracking": {"clip_pre_s": pre, "clip_post_s": post}})


def test_remux_copies_packets_from_the_keyframe_before(source: Path, tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    results = [make_result("cam", s, ["accepted"], when=T0 + timedelta(seconds=s * 0.5), track_ids=[7]) for s in (3, 4)]
    for r in results:
        store.write(r, CONFIG_HASH)
    seg = segment(1.5, 2.0, tuple(r.frame.frame_id for r in results))
    record = ClipWriter(store, config(0.3, 0.3)).write(seg, str(source))
    assert record is not None and record.method == "remux" and record.codec == "h264"
    assert record.path == tmp_path / "store/clips/cam" / f"{clip_id_of(seg)}.mp4"
    assert record.start_pts == pytest.approx(1.0)  # the keyframe at 1.0 s is at or before 1.5 - 0.3
    src = packets(source)
    want = [p for p in src if 1.0 - 1e-6 <= p[0] <= 2.3 + 1e-6]
    got = packets(record.path)
    # No re-encoding: the very same packet bytes; the range covers the segment plus its roll.
    assert {b for _, b, _ in want} <= {b for _, b, _ in got}
    assert len(got) <= len(want) + 3 and got[0][2]
    codec, times = decoded(record.path)
    assert codec == "h264" and len(times) == len(got)  # every copied packet decodes
    assert times[0] == pytest.approx(0.0, abs=0.01)
    assert times[-1] - times[0] >= 2.3 - 1.0 - 1 / FPS
    assert not list(record.path.parent.glob(".*"))  # no temp files left
    side = json.loads(record.sidecar.read_text())
    assert side["method"] == "remux" and side["video"] == record.path.name
    assert [f["frame_id"] for f in side["frames"]] == list(seg.frame_ids)
    assert side["frames"][0]["offset_s"] == pytest.approx(0.5)  # frame at 1.5 s, clip starts at 1.0 s
    assert side["frames"][0]["labels"][0]["status"] == "accepted" and side["tracks"][0]["track_id"] == 7
    (row,) = store.manifest.query("SELECT * FROM clips")
    assert row["clip_id"] == record.clip_id and row["labels"] == 2 and row["frames"] == 2
    (event,) = store.manifest.query("SELECT * FROM outbox WHERE kind = 'clip'")
    payload = json.loads(event["payload"])
    assert event["id"] == record.event_id and event["clip_id"] == record.clip_id and event["topic"] == "cam/clip"
    assert payload["path"] == f"clips/cam/{record.clip_id}.mp4" and payload["labels"] == 2
    assert ClipWriter(store, config(0.3, 0.3)).write(seg, str(source)) is None  # once per segment
    store.close()


def test_remux_at_the_start_of_the_file(source: Path, tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    record = ClipWriter(store, config(2.0, 0.0)).write(segment(0.2, 0.9), str(source))
    assert record is not None and record.start_pts == 0.0
    _, times = decoded(record.path)
    assert len(times) >= 9
    store.close()


def test_encode_path_writes_playable_h264(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    frames = []
    for i in range(12):
        img = np.zeros((95, 127, 3), np.uint8)  # odd sizes: the encoder needs even ones
        img[:, : 10 * i] = 200
        frames.append(Frame("cam", i, i * 0.5, T0 + timedelta(seconds=i * 0.5), img))
    record = ClipWriter(store, config(1.0, 1.0)).write(segment(2.0, 4.0), "rtsp://cam.local/live", frames)
    assert record is not None and record.method == "encode" and record.codec == "h264"
    codec, times = decoded(record.path)
    assert codec == "h264"
    assert len(times) == 9  # the frames at 1.0, 1.5, ..., 5.0 s: the segment 2-4 s with 1 s of roll each side
    assert (record.start_pts, record.end_pts) == (1.0, 5.0)
    np.testing.assert_allclose(np.diff(times), 0.5, atol=0.01)
    store.close()


def test_nothing_to_cut_and_clips_off(tmp_path: Path) -> None:
    store = new_store(tmp_path / "store")
    assert ClipWriter(store, config(1.0, 1.0)).write(segment(2.0, 4.0), None, ()) is None
    off = Config.model_validate({"store": {"clips": False}})
    assert ClipWriter(store, off).write(segment(2.0, 4.0), None, ()) is None
    assert not list((tmp_path / "store").glob("clips/**/*.mp4"))
    store.close()


def test_sidecar_offsets_point_at_the_frames_the_reader_sampled(tmp_path: Path) -> None:
    """Frames sampled by the stream reader sit at their sidecar ``offset_s`` in the remuxed clip, pixel for pixel."""
    from streamlabel.config import StreamConfig
    from streamlabel.streams.source import iter_sampled, open_container
    from streamlabel.tiny.scene import SceneSpec, write_clip

    src = tmp_path / "scene.mp4"
    write_clip(SceneSpec(seconds=3.0), src, gop=8)
    container = open_container(str(src), StreamConfig(url=str(src), fps=10))
    with container:
        sampled = list(iter_sampled("cam", str(src), StreamConfig(url=str(src), fps=10, decode="all"), container))
    seg_frames = sampled[12:18]
    store = new_store(tmp_path / "store")
    for f in seg_frames:
        result = make_result("cam", f.seq, ["accepted"])
        result.frame = f  # the reader's frame (its pts, time and image) with a synthetic label
        store.write(result, CONFIG_HASH)
    ids = tuple(f.frame_id for f in seg_frames)
    seg = TrackSegment("cam", 3, "dog", seg_frames[0].pts, seg_frames[-1].pts, seg_frames[0].time,
                       seg_frames[-1].time, ids)  # fmt: skip
    record = ClipWriter(store, config(0.25, 0.25)).write(seg, str(src))
    assert record is not None and record.start_pts <= seg.start_pts - 0.25 + 1e-6
    side = json.loads(record.sidecar.read_text())
    with av.open(str(record.path)) as c:
        clip = {round(float(fr.time), 3): fr.to_ndarray(format="rgb24") for fr in c.decode(c.streams.video[0])}
    assert max(clip) >= seg.end_pts + 0.25 - record.start_pts - 0.1 - 1e-6
    for f, entry in zip(seg_frames, side["frames"], strict=True):
        image = clip[round(entry["offset_s"], 3)]
        assert np.abs(image.astype(int) - f.image.astype(int)).mean() < 0.5
    store.close()


def test_clip_end_never_runs_past_the_file(source: Path, tmp_path: Path) -> None:
    """A post-roll past the file's last frame (3.9 s in a 4 s file) is clamped to that frame, in row and sidecar."""
    store = new_store(tmp_path / "store")
    record = ClipWriter(store, config(0.0, 3.0)).write(segment(3.0, 3.8), str(source))
    assert record is not None and record.end_pts == pytest.approx(3.9, abs=1e-3)
    (row,) = store.manifest.query("SELECT end_pts, end_time FROM clips")
    assert row["end_pts"] == pytest.approx(3.9, abs=1e-3)
    assert row["end_time"] == (T0 + timedelta(seconds=3.9)).isoformat()
    assert json.loads(record.sidecar.read_text())["end_pts"] == pytest.approx(3.9, abs=1e-3)
    store.close()


@pytest.mark.parametrize("keep_rejected", [False, True])
def test_sidecar_holds_rejected_candidates_only_when_kept(source: Path, tmp_path: Path, keep_rejected: bool) -> None:
    store = new_store(tmp_path / "store", keep_rejected=keep_rejected)
    results = [make_result("cam", s, ["accepted", "rejected"], track_ids=[7, 8]) for s in (3, 4)]
    for r in results:
        store.write(r, CONFIG_HASH)
    seg = segment(1.5, 2.0, tuple(r.frame.frame_id for r in results))
    record = ClipWriter(store, config(0.0, 0.0)).write(seg, str(source))
    assert record is not None
    side = json.loads(record.sidecar.read_text())
    statuses = [lb["status"] for f in side["frames"] for lb in f["labels"]]
    assert statuses == (["accepted", "rejected"] * 2 if keep_rejected else ["accepted"] * 2)
    store.close()
