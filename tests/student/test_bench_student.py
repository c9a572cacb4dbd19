"""``streamlabel bench student``: the figures of one run on tiny models, and the command's JSON."""

from __future__ import annotations

import pytest

from streamlabel.bench.stages import FullSizeModels
from streamlabel.bench.student import STAGES, bench_student


def test_bench_student_times_the_student_and_the_pipeline_on_the_same_frames(tiny_models, tiny_students) -> None:
    models = FullSizeModels(
        tiny_models.yolo, tiny_models.grounding_dino, tiny_models.sam2_config, tiny_models.sam2_checkpoint
    )
    result = bench_student("cpu", frames=2, repeats=1, imgsz=160, models=models, student=tiny_students["finding"])
    ms = result["ms_per_frame"]
    assert set(ms) == {"student", *STAGES} and all(v > 0 for v in ms.values())
    assert result["pipeline_ms_per_frame"] == pytest.approx(sum(ms[s] for s in STAGES), abs=0.05)
    assert result["ratio"] == pytest.approx(result["pipeline_ms_per_frame"] / ms["student"], rel=0.02)
    assert result["gate_break_even_closed"] == pytest.approx(ms["student"] / (ms["ground"] + ms["segment"]), rel=0.02)
    assert (result["device"], result["frames"], result["student_imgsz"]) == ("cpu", 2, 160)
    assert "yolo11n-seg" in result["architectures"]["student"]
