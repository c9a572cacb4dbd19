"""``streamlabel bench student-gate``: the scripted student drives the gate on the quality benchmark's scenes."""

from __future__ import annotations

from streamlabel.bench.student_gate import StudentRates, bench_gate, run_gate


def test_a_student_that_finds_nothing_closes_every_frame() -> None:
    blind = StudentRates(miss_rate=1.0, closed_found_rate=0.0, button_rate=0.0)
    on = run_gate(seed=1, frames=20, rates=blind, gate=True)
    off = run_gate(seed=1, frames=20, rates=blind, gate=False)
    assert (on["grounded"], on["segmented_parts"], on["gated"], on["dataset_labels"]) == (0, 0, 20, 0)
    assert off["grounded"] == 20 and off["dataset_labels"] > 0 and off["gated"] == 0


def test_a_student_that_misses_no_open_eye_closes_a_few_frames_and_loses_no_label() -> None:
    result = bench_gate(seeds=1, frames=40, miss_rates=[0.0])
    (row,) = result["rows"]
    assert row["student"]["miss_rate"] == 0.0
    # seed 0 has one dog, its eyes open except in blinks: the frames of a blink the student does not mistake are
    # gated (it finds a closed eye in 20% of them, the button in 10% of frames), and no label is lost
    assert 0 < row["on"]["gated"] < 40 and row["grounded_share"] < 1.0
    assert row["correct_lost"] <= 1 and row["labels_lost"] <= 1
