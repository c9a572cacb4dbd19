"""The dataset report's figures on a small store with known counts, and its cache and near-duplicate search."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from streamlabel.store.report import build_report
from streamlabel.store.report_images import CACHE_FILE, dhash, duplicate_clusters
from tests.fixtures.report_store import EXPECTED, scene, write_report_store


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report_store(tmp_path_factory.mktemp("report") / "store")


def test_counts_per_stream_and_day(store_root: Path) -> None:
    report = build_report(store_root)
    assert set(report["streams"]) == {"cam", "yard"}
    for stream, expected in EXPECTED.items():
        figures = report["streams"][stream]
        assert figures["frames"] == expected["frames"]
        assert figures["labels"] == expected["labels"]
    cam_days = {
        d["day"]: sum(d["frames"].values()) - d["frames"].get("review_beside_dataset", 0)
        for d in report["days"]
        if d["stream"] == "cam"
    }
    assert cam_days == EXPECTED["cam"]["days"]
    assert report["totals"] == {"frames": 16, "labels": 17, "distinct_frames": 8}


def test_near_duplicates_and_day_night(store_root: Path) -> None:
    report = build_report(store_root, cache=False)
    for stream, expected in EXPECTED.items():
        dup = report["duplicates"]["streams"][stream]
        assert dup["analysed"] == expected["frames"]["dataset"]
        assert dup["distinct"] == expected["distinct"] == report["streams"][stream]["distinct_frames"]
        light = report["day_night"][stream]
        assert (light.get("day", 0), light.get("night", 0)) == (expected["day"], expected["night"])
    assert report["duplicates"]["streams"]["cam"]["largest_cluster"] == 4
    # with 0 bits only identical hashes merge: the copies with a patch come apart (more distinct frames)
    strict = build_report(store_root, max_bits=0, cache=False)
    assert strict["duplicates"]["streams"]["cam"]["distinct"] > EXPECTED["cam"]["distinct"]
    # one image per stream-day analysed
    sampled = build_report(store_root, per_day=1, cache=False)
    assert sampled["duplicates"]["streams"]["cam"]["analysed"] == 2
    assert sampled["day_night"]["cam"]["stored"] == 10


def test_queues_tracks_and_label_sizes(store_root: Path) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    report = build_report(store_root, now=later)
    review, pending = report["queues"]["review"], report["queues"]["pending"]
    assert (review["frames"], review["labels"], pending["frames"], pending["labels"]) == (2, 2, 1, 1)
    assert review["oldest_days"] == pytest.approx(2.0, abs=0.05)
    assert len(review["ages_days"]) == 2
    yard = report["tracks"]["yard"]
    assert yard["tracks"] == 2 and {t["track_id"]: t["labels"] for t in yard["largest"]} == EXPECTED["yard"]["tracks"]
    sizes = report["label_sizes"]
    assert sizes["count"] == 13 and sum(sizes["histogram"]["counts"]) == 13
    # each part is an ellipse with half-axes of 15 and 14 px: about pi * 15 * 14 = 660 px²
    assert 550 < sizes["area_px"]["median"] < 700
    json.dumps(report)  # JSON-ready


def test_the_cache_is_reused_and_refreshed(store_root: Path, tmp_path: Path) -> None:
    build_report(store_root)
    cache = json.loads((store_root / CACHE_FILE).read_text())
    assert len(cache["images"]) == 13
    first = next(iter(cache["images"]))
    cache["images"][first]["dhash"] = "0" * 16  # a stale answer with the right key is trusted
    (store_root / CACHE_FILE).write_text(json.dumps(cache))
    trusted = build_report(store_root)
    cache["images"][first]["key"] = [0, 0]  # a changed file is analysed again
    (store_root / CACHE_FILE).write_text(json.dumps(cache))
    fresh = build_report(store_root)
    stream = "cam" if "/cam/" in first else "yard"
    assert trusted["duplicates"]["streams"][stream]["distinct"] == EXPECTED[stream]["distinct"] + 1
    assert fresh["duplicates"]["streams"][stream]["distinct"] == EXPECTED[stream]["distinct"]
    assert json.loads((store_root / CACHE_FILE).read_text())["images"][first]["dhash"] != "0" * 16


def test_no_store_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.sqlite is missing"):
        build_report(tmp_path / "nothing")


def test_duplicate_clusters_by_hamming_distance() -> None:
    base = 0x0F0F_0F0F_0F0F_0F0F
    near = base ^ 0b1011  # 3 bits away
    chain = near ^ (0b111 << 40)  # 3 bits from near, 6 from base: joined through near
    far = ~base & (2**64 - 1)
    labels = duplicate_clusters([base, near, chain, far, base], max_bits=3)
    assert labels[0] == labels[1] == labels[2] == labels[4] != labels[3]
    assert len(set(duplicate_clusters([base, near, chain, far], max_bits=2))) == 4
    assert duplicate_clusters([], max_bits=4) == []


def test_dhash_survives_noise_and_a_small_change_and_tells_scenes_apart() -> None:
    base = scene(1).mean(axis=2).astype(np.uint8)
    noisy = np.clip(base + np.random.default_rng(0).normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    moved = scene(1, patch=2).mean(axis=2).astype(np.uint8)
    other = scene(2).mean(axis=2).astype(np.uint8)
    bits = [bin(dhash(base) ^ dhash(x)).count("1") for x in (noisy, moved, other)]
    assert bits[0] <= 2 and bits[1] <= 4 and bits[2] >= 16, bits
