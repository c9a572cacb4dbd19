"""``streamlabel bench ingest``: plain decode speed versus source + sampler speed on the same file, one run."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from streamlabel.config import StreamConfig
from streamlabel.streams.source import KeyframeGate, iter_sampled, open_container

# The generated benchmark file: 1080p H.264, 30 fps, a keyframe every second, 10 s of moving texture.
BENCH_W, BENCH_H, BENCH_FPS, BENCH_SECONDS, BENCH_GOP = 1920, 1080, 30, 10, 30


def make_1080p(path: Path) -> Path:
    """Encode a synthetic 1080p H.264 clip (moving gradient + noise, so the encoder has real work)."""
    import av

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, size=(BENCH_H, BENCH_W, 3), dtype=np.uint8)
    xs = np.linspace(0, 255, BENCH_W, dtype=np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(BENCH_FPS))
        stream.width, stream.height, stream.pix_fmt = BENCH_W, BENCH_H, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        stream.codec_context.gop_size = BENCH_GOP
        for i in range(BENCH_FPS * BENCH_SECONDS):
            row = ((xs + 8 * i) % 256).astype(np.uint8)
            img = np.broadcast_to(row[None, :, None], (BENCH_H, BENCH_W, 3)) // 2 + np.roll(noise, 16 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _plain_decode(path: Path) -> tuple[int, float, float]:
    """Decode every frame, nothing else: (frames, seconds, media duration)."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        start = time.perf_counter()
        n, last = 0, 0.0
        for frame in container.decode(video):
            n += 1
            last = frame.time or last
        return n, time.perf_counter() - start, last


def bench_ingest(path: Path, fps: float, decode: str = "auto", hwaccel: str = "none") -> dict[str, Any]:
    """Measure plain decoding and the source + sampler on ``path``; figures in one dict.

    With ``hwaccel`` other than 'none' the source + sampler runs a second time with ``streams.<name>.hwaccel`` set to
    it, side by side: ``hwaccel_used`` is the device type the stream really decoded on (None: it fell back to
    software) and ``hwaccel_speedup`` its rate over the software source's.
    """
    frames, decode_s, duration = _plain_decode(path)
    ingest_s, sampled, gate = _time_source(path, StreamConfig(url=str(path), fps=fps, decode=decode))
    decode_fps = frames / decode_s
    # Source frames covered per second: the same unit as decode_fps, so the ratio compares like with like.
    ingest_fps = frames / ingest_s
    result: dict[str, Any] = {
        "file": str(path),
        "frames": frames,
        "duration_s": round(duration, 3),
        "sample_fps": fps,
        "sampled": sampled,
        "decode_fps": round(decode_fps, 1),
        "ingest_fps": round(ingest_fps, 1),
        "ratio": round(ingest_fps / decode_fps, 3),
        "realtime_factor": round(duration / ingest_s, 1) if ingest_s > 0 else None,
        "mode": "keyframes" if gate.keyframes_only else "full",
        "packets_skipped": gate.skipped,
    }
    if hwaccel != "none":
        result.update(_hwaccel_figures(path, fps, decode, hwaccel, frames, ingest_fps))
    return result


def _time_source(path: Path, cfg: StreamConfig) -> tuple[float, int, KeyframeGate]:
    """Seconds the source + sampler take over the whole file, frames sampled, and the gate (its counts)."""
    container = open_container(cfg.url, cfg)
    gate = KeyframeGate(1.0 / cfg.fps, cfg.decode)
    start = time.perf_counter()
    sampled = sum(1 for _ in iter_sampled("bench", cfg.url, cfg, container, gate=gate))
    took_s = time.perf_counter() - start
    container.close()
    return took_s, sampled, gate


def _hwaccel_figures(
    path: Path, fps: float, decode: str, hwaccel: str, frames: int, software_fps: float
) -> dict[str, Any]:
    from streamlabel.streams.options import hwaccel_type

    cfg = StreamConfig(url=str(path), fps=fps, decode=decode, hwaccel=hwaccel)
    used = hwaccel_type(cfg)
    took_s, sampled, _ = _time_source(path, cfg)
    rate = frames / took_s
    return {
        "hwaccel": hwaccel,
        "hwaccel_used": used,
        "hwaccel_sampled": sampled,
        "hwaccel_ingest_fps": round(rate, 1),
        "hwaccel_speedup": round(rate / software_fps, 3),
    }
