"""The video of a clip: remux the packets of a local file, or H.264-encode frames: the sampled ones of a live stream,
or the decoded ones of a file when people in them are pixelated (``store.clips``, ``privacy.people``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.frames import Frame
from streamlabel.store.staging import fsync_dir

ENCODER = "libx264"
ENCODE_CRF = "23"


def _local_file(url: str | None) -> Path | None:
    from streamlabel.streams.source import is_live

    if not url or is_live(url):
        return None
    path = Path(url.removeprefix("file://"))
    return path if path.is_file() else None


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _fsync_rename(tmp: Path, path: Path, durable: bool = False) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def remux(source: Path, out: Path, start_s: float, end_s: float) -> tuple[str, float, float, int]:
    """Copy the video packets of ``source`` covering ``[start_s, end_s]`` (seconds from its first frame) to ``out``.

    Starts at the keyframe at or before ``start_s``; timestamps are rebased to 0. Returns the codec name, the
    stream times (seconds) of the first and the last copied frame (the last never past the file's end, whatever
    ``end_s`` asked for), and the number of packets. Raises ValueError when the range holds no packet.
    """
    import av

    with av.open(str(source), metadata_errors="replace") as inp:
        vin = inp.streams.video[0]
        tb = vin.time_base
        origin = vin.start_time if vin.start_time is not None else 0
        inp.seek(int((start_s / tb) + origin) if start_s > 0 else origin, stream=vin, backward=True, any_frame=False)
        kept: list[Any] = []
        for packet in inp.demux(vin):
            if packet.dts is None or packet.size == 0:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            t = float((pts - origin) * tb)
            if packet.is_keyframe and t <= start_s + 1e-6:
                kept = [packet]  # a later keyframe still at or before the start: begin there
                continue
            if not kept:
                if not packet.is_keyframe:
                    continue  # the seek landed before a keyframe: nothing decodes without it
                kept = [packet]
                continue
            if float((packet.dts - origin) * tb) > end_s:
                break
            kept.append(packet)
        if not kept:
            raise ValueError(f"no video packet in [{start_s:.3f}, {end_s:.3f}] s of {source}")
        first = kept[0]
        first_pts = first.pts if first.pts is not None else first.dts
        last_pts = max(p.pts if p.pts is not None else p.dts for p in kept)
        offset = first_pts  # the first frame shows at 0 (dts may go below 0 with B-frames: an edit list)
        with av.open(str(out), "w", format="mp4") as dst:
            vout = dst.add_stream_from_template(vin)
            for packet in kept:
                packet.dts -= offset
                if packet.pts is not None:
                    packet.pts -= offset
                packet.stream = vout
                dst.mux(packet)
        return vin.codec_context.name, float((first_pts - origin) * tb), float((last_pts - origin) * tb), len(kept)


Transform = Callable[[np.ndarray, float], np.ndarray]
"""(RGB frame, stream time in seconds) -> the frame to write (the people in it pixelated)."""


class _H264Writer:
    """Writes RGB frames to an MP4 as H.264 at their own timestamps (ms resolution), one frame at a time."""

    def __init__(self, out: Path, width: int, height: int, fps: Fraction | int) -> None:
        import av

        self.h, self.w = (height // 2) * 2, (width // 2) * 2  # yuv420p needs even sizes
        self._dst = av.open(str(out), "w", format="mp4")
        self._stream = self._dst.add_stream(ENCODER, rate=fps, options={"crf": ENCODE_CRF, "preset": "veryfast"})
        self._stream.width, self._stream.height, self._stream.pix_fmt = self.w, self.h, "yuv420p"
        self._stream.codec_context.time_base = Fraction(1, 1000)
        self._first_s: float | None = None
        self._last = -1

    def add(self, image: np.ndarray, t_s: float) -> None:
        """Encode ``image`` (H×W×3 RGB) shown at stream time ``t_s`` (seconds; the first frame shows at 0)."""
        import av

        if self._first_s is None:
            self._first_s = t_s
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: self.h, : self.w]), format="rgb24")
        pts = max(round((t_s - self._first_s) * 1000), self._last + 1)
        vf.pts, vf.time_base, self._last = pts, Fraction(1, 1000), pts
        self._dst.mux(self._stream.encode(vf))

    def close(self) -> None:
        try:
            self._dst.mux(self._stream.encode(None))
        finally:
            self._dst.close()


def encode(frames: Sequence[Frame], out: Path, transform: Transform | None = None) -> str:
    """H.264-encode ``frames`` (RGB) to ``out`` at their own timestamps (ms resolution), each through
    ``transform`` first when given; returns the codec name."""
    dts = np.diff([f.pts for f in frames])
    fps = Fraction(1 / float(np.median(dts))).limit_denominator(1000) if len(dts) and np.median(dts) > 0 else 1
    writer = _H264Writer(out, frames[0].width, frames[0].height, fps)
    try:
        for f in frames:
            writer.add(f.image if transform is None else transform(f.image, f.pts), f.pts)
    finally:
        writer.close()
    return "h264"


def reencode(
    source: Path, out: Path, start_s: float, end_s: float, transform: Transform
) -> tuple[str, float, float, int]:
    """Decode the frames of ``source`` shown in ``[start_s, end_s]`` (seconds from its first frame), pass each
    through ``transform`` and H.264-encode them to ``out``, one frame in memory at a time.

    Returns the codec name, the stream times (seconds) of the first and the last written frame and the number of
    frames. Raises ValueError when the range holds no frame.
    """
    import av

    first_s: float | None = None
    last_s, n = start_s, 0
    writer: _H264Writer | None = None
    with av.open(str(source), metadata_errors="replace") as inp:
        vin = inp.streams.video[0]
        tb, origin = vin.time_base, vin.start_time if vin.start_time is not None else 0
        rate = vin.average_rate or vin.guessed_rate or 25
        inp.seek(int((start_s / tb) + origin) if start_s > 0 else origin, stream=vin, backward=True, any_frame=False)
        try:
            for frame in inp.decode(vin):
                if frame.pts is None:
                    continue
                t_s = float((frame.pts - origin) * tb)
                if t_s < start_s - 1e-6:
                    continue
                if t_s > end_s + 1e-6:
                    break
                if writer is None:
                    writer, first_s = _H264Writer(out, frame.width, frame.height, Fraction(rate)), t_s
                writer.add(transform(frame.to_ndarray(format="rgb24"), t_s), t_s)
                last_s, n = t_s, n + 1
        finally:
            if writer is not None:
                writer.close()
    if writer is None or first_s is None:
        raise ValueError(f"no video frame in [{start_s:.3f}, {end_s:.3f}] s of {source}")
    return "h264", first_s, last_s, n
