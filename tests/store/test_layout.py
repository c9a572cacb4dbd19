"""The layout rules alone: which copies a frame gets, what is painted, the camera-day split, the background rate."""

from __future__ import annotations

import numpy as np
import pytest

from streamlabel.store.layout import (
    BackgroundSampler,
    Destination,
    PartState,
    paint_ignore_regions,
    plan_copies,
    subset_of,
)

A, R, P, X = "accepted", "review", "pending", "rejected"


@pytest.mark.parametrize(
    ("parts", "split", "hold", "lines", "ignored"),
    [
        ([PartState(A)], "dataset", None, (0,), ()),
        ([PartState(A), PartState(R)], "dataset", "review", (0,), (1,)),
        ([PartState(A), PartState(P), PartState(R)], "dataset", "pending", (0,), (1, 2)),
        ([PartState(A), PartState(X, rejection="poor_label")], "dataset", None, (0,), (1,)),
        ([PartState(A), PartState(X, rejection="not_target")], "dataset", None, (0,), ()),
        ([PartState(A), PartState(X)], "dataset", None, (0,), (1,)),  # kind not recorded: the cautious side
        ([PartState(A), PartState(A, flagged=True)], "dataset", "review", (0,), (1,)),
        ([PartState(A), PartState(X, rejection="reject_frame")], "rejected", None, (1,), ()),
        ([PartState(A, flagged=True)], "review", None, (0,), ()),
        ([PartState(R), PartState(X, rejection="poor_label")], "review", None, (0,), ()),
        ([PartState(R), PartState(P)], "pending", None, (0, 1), ()),
        ([PartState(X, rejection="not_target")], "rejected", None, (0,), ()),
    ],
)
def test_plan_copies(parts: list[PartState], split: str, hold: str | None, lines: tuple, ignored: tuple) -> None:
    copies = plan_copies(parts)
    assert (copies.split, copies.second_hold, copies.primary_rows, copies.ignore_rows) == (split, hold, lines, ignored)


def test_plan_copies_keeps_the_waiting_copy_beside_the_dataset_copy() -> None:
    copies = plan_copies([PartState(A), PartState(R), PartState(P)])
    assert copies.second_hold == Destination.PENDING and copies.hold_rows == (0, 1, 2)
    assert not plan_copies([]).kept


def test_paint_fills_the_grown_box_with_the_mean_and_spares_accepted_parts() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    accepted = np.array([[30, 10], [39, 10], [39, 19], [30, 19]], np.float64)  # overlaps the box's right side
    out = paint_ignore_regions(image, np.array([[10, 10, 32, 20]]), [accepted], margin_px=2)
    mean = np.round(image.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    region = np.zeros((40, 60), bool)
    region[8:22, 8:34] = True
    region[10:20, 30:40] = False  # the accepted part keeps its pixels
    assert (out[region] == mean).all()
    np.testing.assert_array_equal(out[~region], image[~region])
    assert (image == paint_ignore_regions(image, np.zeros((0, 4)), [], 4)).all()


def test_subset_is_a_fixed_function_of_the_camera_day() -> None:
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    picks = [subset_of("kitchen", d, 0.5) for d in days]
    assert picks == [subset_of("kitchen", d, 0.5) for d in days]  # no per-process salt
    assert {"train", "val"} == set(picks)
    assert {subset_of("kitchen", d, 0.0) for d in days} == {"train"}
    assert {subset_of("kitchen", d, 1.0) for d in days} == {"val"}


@pytest.mark.parametrize(
    ("fraction", "n", "kept"), [(0.05, 100, 5), (0.1, 9, 0), (0.3, 10, 3), (0.0, 50, 0), (1, 4, 4)]
)
def test_background_sampler_keeps_floor_of_n_times_the_fraction(fraction: float, n: int, kept: int) -> None:
    sampler = BackgroundSampler(fraction)
    taken = [sampler.take("cam") for _ in range(n)]
    assert sum(taken) == kept == sampler.kept["cam"]
