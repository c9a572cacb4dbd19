"""What the dataset report reads from stored images: a perceptual hash and the colour saturation, cached.

Each analysed image is decoded once at 1/8 scale (JPEG DCT scaling, fast) and gives a 64-bit difference hash
(dHash: a 9×8 grayscale thumbnail, one bit per pair of horizontal neighbours, so it survives JPEG re-encoding and
small exposure changes) and its mean HSV saturation (``budget.is_infrared`` decides night from it). Answers are
cached in ``<store>/report-cache.json`` keyed by the image's path, size and mtime, so a second report reads only
new images. Near-duplicates are hashes within a few bits (Hamming distance) of each other, clustered per stream.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamlabel.store.budget import mean_saturation
from streamlabel.store.staging import atomic_write

log = logging.getLogger(__name__)

CACHE_FILE = "report-cache.json"
CACHE_VERSION = 1


def dhash(gray: np.ndarray) -> int:
    """The 64-bit difference hash of a grayscale image (row-major, bit set where a pixel is brighter than its right)."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def analyse_image(path: Path) -> dict[str, Any] | None:
    """``{"dhash": hex, "saturation": float}`` of one stored JPEG, or None when it cannot be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    if bgr is None:
        return None
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return {"dhash": f"{dhash(gray):016x}", "saturation": round(mean_saturation(bgr[..., ::-1]), 3)}


class ImageCache:
    """The report's per-image answers, loaded from and saved to ``<store>/report-cache.json``."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = root
        self.path = root / CACHE_FILE
        self.enabled = enabled
        self.entries: dict[str, dict[str, Any]] = self._load() if enabled else {}
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the report cache %s (%s); it is rebuilt", self.path, exc)
            return {}
        return data.get("images", {}) if data.get("v") == CACHE_VERSION else {}

    def get(self, rel: str) -> dict[str, Any] | None:
        """The answers for the image at ``rel`` (relative to the store), from the cache when it is unchanged."""
        path = self.root / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(rel)
        if entry is not None and entry.get("key") == key:
            self.hits += 1
            return entry
        answer = analyse_image(path)
        if answer is None:
            return None
        self.misses += 1
        self.entries[rel] = entry = {"key": key, **answer}
        return entry

    def save(self, keep: Iterable[str]) -> None:
        """Write the entries of the images in ``keep`` (others were pruned); a read-only store is only logged."""
        if not self.enabled or not self.misses:
            return
        kept = {rel: self.entries[rel] for rel in keep if rel in self.entries}
        try:
            atomic_write(self.path, json.dumps({"v": CACHE_VERSION, "images": kept}).encode())
        except OSError as exc:
            log.warning(
                "cannot write the report cache %s (%s): the next report analyses every image again", self.path, exc
            )


def duplicate_clusters(hashes: list[int], max_bits: int) -> list[int]:
    """A cluster label per hash: hashes within ``max_bits`` of each other (transitively) share a label.

    Multi-index search: a pair within ``max_bits`` agrees exactly on at least one of ``max_bits + 1`` disjoint bit
    chunks, so only hashes sharing a chunk are compared (identical hashes first collapse to one).
    """
    unique = sorted(set(hashes))
    index = {h: i for i, h in enumerate(unique)}
    parent = list(range(len(unique)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    values = np.array(unique, dtype=np.uint64)
    for lo, hi in _chunks(max_bits + 1):
        keys = (values >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        buckets: dict[int, list[int]] = {}
        for i, k in enumerate(keys.tolist()):
            buckets.setdefault(k, []).append(i)
        for members in buckets.values():
            for pos, i in enumerate(members[:-1]):
                rest = np.array(members[pos + 1 :])
                close = rest[np.bitwise_count(values[rest] ^ values[i]) <= max_bits]
                for j in close.tolist():
                    parent[find(j)] = find(i)
    return [find(index[h]) for h in hashes]


def _chunks(n: int) -> list[tuple[int, int]]:
    """``n`` disjoint [lo, hi) bit ranges covering the 64 bits."""
    bounds = [round(64 * k / n) for k in range(n + 1)]
    return list(itertools.pairwise(bounds))
