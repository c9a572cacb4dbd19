"""``streamlabel bench review``: how fast the review page answers with a large manifest (goal: queue < 200 ms).

Fills a throw-away store's manifest with ``items`` parts (one per frame, spread over streams, statuses, days and
confidences like a busy store), then times the queue page, a filtered and a deep page, and the item page through
the app's own ASGI stack (Starlette's test client: routing, the SQL, the template; no network, no thumbnails,
which are separate requests and cached once rendered).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from streamlabel.config import Config
from streamlabel.review import create_app
from streamlabel.store.dataset import DatasetStore

STATUSES = ("review",) * 6 + ("pending", "accepted", "accepted", "rejected")
CHECKS = ("anchor_visible", "part_visible", "part_open", "no_human", "mask_on_part")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def fill_manifest(store: DatasetStore, items: int, streams: int = 4, seed: int = 0) -> None:
    """Insert ``items`` frames with one part each (rows only, no image files), through ``Manifest.insert_frame``."""
    rng = random.Random(seed)
    store.manifest.record_run("bench", {"bench": True}, {})
    for k in range(items):
        store.manifest.insert_frame(*_frame_and_label(k, rng, streams))


def _frame_and_label(k: int, rng: random.Random, streams: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frame ``k`` of the bench store and its one part (status, confidence and checks drawn from ``rng``)."""
    stream = f"cam{k % streams}"
    status = STATUSES[rng.randrange(len(STATUSES))]
    when = T0 + timedelta(seconds=k * 30)
    checks = {c: rng.random() > 0.1 for c in CHECKS}
    frame = {
        "frame_id": f"{stream}_{k:07d}",
        "stream": stream,
        "seq": k,
        "pts": k * 0.5,
        "time": when.isoformat(),
        "width": 1920,
        "height": 1080,
        "split": status if status != "accepted" else "dataset",
        "image": None,
        "label": None,
        "config_hash": "bench",
    }
    label = {
        "idx": 0,
        "class_id": 0,
        "class_name": "eye",
        "status": status,
        "xyxy": "[900, 500, 960, 540]",
        "anchor_xyxy": "[600, 300, 1300, 900]",
        "anchor_class": "dog",
        "score": 0.5,
        "mask_score": 0.8,
        "polygon": "[[0.47, 0.47], [0.5, 0.46], [0.5, 0.5], [0.47, 0.5]]",
        "verdict_passed": int(all(checks.values())),
        "verdict_confidence": round(rng.random(), 4),
        "verdict_checks": json.dumps(checks),
        "verdict_check_probs": json.dumps({c: round(rng.random(), 3) for c in CHECKS}),
        "verdict_reason": "bench",
        "verdict_model": "bench",
        "track_id": k // 20,
    }
    return frame, [label]


def _time_get(client: TestClient, url: str, repeats: int) -> dict[str, float]:
    times_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        answer = client.get(url)
        times_ms.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {url} answered {answer.status_code}: {answer.text[:200]}")
    return {"median_ms": round(statistics.median(times_ms), 1), "max_ms": round(max(times_ms), 1)}


def bench_review(items: int = 100_000, repeats: int = 20, root: Path | None = None) -> dict[str, Any]:
    """Fill a manifest with ``items`` parts and time the pages; returns the figures (milliseconds)."""
    with tempfile.TemporaryDirectory(prefix="streamlabel-bench-review-") as tmp:
        store = DatasetStore(root or Path(tmp) / "store", ["eye"])
        start = time.perf_counter()
        fill_manifest(store, items)
        fill_s = time.perf_counter() - start
        client = TestClient(create_app(Config(), store))
        client.get("/")  # warm: templates compiled, SQLite pages cached
        item_id = int(
            store.manifest.query(
                "SELECT id FROM labels WHERE status = 'review' ORDER BY id LIMIT 1 OFFSET ?", (min(500, items // 4),)
            )[0][0]
        )
        pages = {
            "queue": "/",
            "queue_htmx_grid": "/?status=review",
            "queue_stream_day": "/?stream=cam1&day=2026-11-20",
            "queue_failed_check": "/?check=part_open",
            "queue_page_500": "/?page=500",
            "item": f"/items/{item_id}",
        }
        result: dict[str, Any] = {"items": items, "fill_s": round(fill_s, 1), "repeats": repeats}
        for name, url in pages.items():
            result[name] = _time_get(client, url, repeats)
        result["open_items"] = sum(store.manifest.counts().get(s, 0) for s in ("review", "pending"))
        store.close()
    return result
