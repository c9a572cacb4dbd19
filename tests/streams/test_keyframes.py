"""Keyframe-only decoding: decided from the stream's own GOP, same samples as full decoding, less work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.config import StreamConfig
from streamlabel.streams.source import KeyframeGate, iter_sampled, open_container


@pytest.mark.parametrize(
    ("mode", "interval", "packets", "decoded"),
    [
        ("auto", 1.0, [], []),
        # GOP 1 s, sampling every 1 s: after the second keyframe only keyframes are decoded.
        (
            "auto",
            1.0,
            [(True, 0.0), (False, 0.5), (True, 1.0), (False, 1.5), (True, 2.0)],
            [True, True, True, False, True],
        ),
        # Sampling every 0.5 s with a 1 s GOP: everything is decoded.
        ("auto", 0.5, [(True, 0.0), (False, 0.5), (True, 1.0), (False, 1.5)], [True, True, True, True]),
        # No timestamps (a GStreamer RTSP source): the GOP is unknown, so everything is decoded.
        ("auto", 5.0, [(True, None), (False, None), (True, None), (False, None)], [True, True, True, True]),
        ("all", 10.0, [(True, 0.0), (False, 0.5), (True, 1.0), (False, 1.5)], [True, True, True, True]),
        ("keyframes", 0.1, [(True, 0.0), (False, 0.5), (True, 1.0)], [True, False, True]),
    ],
)
def test_keyframe_gate(mode: str, interval: float, packets: list, decoded: list[bool]) -> None:
    gate = KeyframeGate(interval, mode)
    assert [gate.wants(key, t) for key, t in packets] == decoded
    assert gate.skipped == decoded.count(False)


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamlabel.tiny.scene import SceneSpec, write_clip

    path = tmp_path_factory.mktemp("gop") / "gop10.mp4"
    write_clip(SceneSpec(seconds=6.0, fps=10), path, gop=10)
    return path


@pytest.mark.parametrize("fps", [0.5, 1.0, 3.0])
def test_auto_mode_samples_the_same_frames_as_full_decoding(gop_clip: Path, fps: float) -> None:
    def sample(mode: str) -> tuple[list[float], KeyframeGate]:
        cfg = StreamConfig(url=str(gop_clip), fps=fps, decode=mode)
        gate = KeyframeGate(1 / fps, mode)
        with open_container(cfg.url, cfg) as container:
            frames = list(iter_sampled("s", cfg.url, cfg, container, gate=gate))
        return [round(f.pts, 3) for f in frames], gate

    auto, gate = sample("auto")
    full, _ = sample("all")
    assert auto == full
    assert gate.keyframes_only == (1 / fps >= 1.0)
    assert (gate.skipped > 0) == (1 / fps >= 1.0)


def test_bench_ingest_json(gop_clip: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "ingest", str(gop_clip), "--fps", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])  # stdout only: logs go to stderr
    assert {"decode_fps", "ingest_fps", "ratio", "realtime_factor", "mode"} <= set(figures)
    assert figures["mode"] == "keyframes" and figures["frames"] == 60 and figures["sampled"] == 6
    assert figures["ratio"] == pytest.approx(figures["ingest_fps"] / figures["decode_fps"], rel=0.01)


def test_bench_ingest_times_a_hwaccel_side_by_side(gop_clip: Path) -> None:
    """A type this machine cannot decode on (no GPU here) falls back to software and says so: ``hwaccel_used`` None,
    the same frames sampled, and a speed-up near 1."""
    args = ["bench", "ingest", str(gop_clip), "--fps", "1", "--hwaccel", "cuda", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["hwaccel"] == "cuda"
    assert figures["hwaccel_sampled"] == figures["sampled"] == 6
    expected_used = "cuda" if _cuda_decodes() else None
    assert figures["hwaccel_used"] == expected_used
    assert figures["hwaccel_speedup"] == pytest.approx(figures["hwaccel_ingest_fps"] / figures["ingest_fps"], rel=0.02)


def test_bench_ingest_names_an_unknown_hwaccel(gop_clip: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "ingest", str(gop_clip), "--hwaccel", "warp-drive"])
    assert result.exit_code == 2
    assert "--hwaccel" in result.output


def _cuda_decodes() -> bool:
    from streamlabel.streams.options import hwaccel_works

    return hwaccel_works("cuda", None)
