"""Retention: keep the store under ``store.max_gb`` and ``store.max_age_days`` without losing an undelivered event.

Order of pruning, oldest first within each step:

1. review and rejected frames (their image and label files), the review copies beside dataset copies, and the
   originals kept for undoing people's decisions (``store/originals.py``);
2. clips (MP4 and sidecar);
3. dataset frames whose events were all delivered (at least one outbox row, none with ``delivered`` NULL).

Never pruned: pending frames, and any frame or clip that still has an undelivered outbox row. A pruned frame or
clip keeps its manifest rows (provenance, verdicts, the outbox history): the frame's ``image``/``label`` (the
clip's ``path``/``sidecar``) become NULL and a ``pruned`` row records which files went, when and why. The
manifest is updated first and the files deleted after it, so a crash in between leaves only files that the
manifest no longer names; the next ``prune`` deletes them (it sweeps the ``pruned`` table's paths).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from streamlabel.store.clips import ensure_clips_table
from streamlabel.store.manifest import utc_now

if TYPE_CHECKING:
    from streamlabel.config import Config
    from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

BYTES_PER_GB = 1_000_000_000
BATCH = 200  # items marked per manifest transaction

PRUNED_SCHEMA = """
CREATE TABLE IF NOT EXISTS pruned (
    id      INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,        -- frame | hold (a dataset frame's review copy) | original | clip
    ref     TEXT NOT NULL,        -- frame_id or clip_id
    split   TEXT,                 -- the frame's split (review, rejected, dataset), NULL for clips
    files   TEXT NOT NULL,        -- the deleted paths, relative to the store root, one per line
    bytes   INTEGER NOT NULL,
    reason  TEXT NOT NULL,        -- age | size
    pruned  TEXT NOT NULL,
    done    INTEGER NOT NULL DEFAULT 0   -- 1 once the files are deleted
)
"""


class StoreLike(Protocol):
    """What ``prune`` needs of a store: a DatasetStore, or a bare root + Manifest (a second process)."""

    root: Path
    manifest: Manifest


@dataclass
class StoreHandle:
    """A store opened for pruning only: unlike DatasetStore, opening it touches no file (safe beside a daemon)."""

    root: Path
    manifest: Manifest


@dataclass
class PruneReport:
    """What one ``prune`` did."""

    bytes_before: int = 0
    bytes_after: int = 0
    freed: int = 0
    frames: dict[str, int] = field(default_factory=dict)  # split -> frames pruned
    clips: int = 0
    limit_bytes: int | None = None
    over_limit: bool = False  # still above max_gb: everything left is pending, undelivered or protected

    def summary(self) -> str:
        frames = ", ".join(f"{n} {s}" for s, n in sorted(self.frames.items())) or "no"
        return (
            f"pruned {frames} frames and {self.clips} clips, freed {self.freed / 1e6:.1f} MB "
            f"({self.bytes_before / 1e6:.1f} -> {self.bytes_after / 1e6:.1f} MB)"
        )


@dataclass(frozen=True)
class _Item:
    kind: str  # frame | clip
    ref: str
    split: str | None
    files: tuple[str, ...]
    when: datetime


def _checkpoint(manifest: Any) -> None:
    """Fold the WAL back into manifest.sqlite so that its transient size does not count against max_gb."""
    try:
        manifest.query("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:  # a reader holds it: the WAL stays, pruning goes on
        log.debug("WAL checkpoint skipped: %s", exc)


def store_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (the manifest included); a hard-linked file counts once (a training
    run links the dataset images it trains on, docs/training.md)."""
    total, linked = 0, set()
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    if st.st_nlink > 1:
                        if (st.st_dev, st.st_ino) in linked:
                            continue
                        linked.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def prune(store: StoreLike, cfg: Config, now: datetime | None = None) -> PruneReport:
    """Apply ``store.max_age_days``, ``store.review_max_age_days`` then ``store.max_gb`` to ``store``; returns what
    went.

    Args:
        store: the open store (a DatasetStore or a StoreHandle; its manifest is updated in place).
        cfg: the config (``store.max_gb``, ``store.max_age_days`` and ``store.review_max_age_days`` are read).
        now: the current time (tests); default the UTC wall clock.
    """
    now = now or datetime.now(UTC)
    root, manifest = store.root, store.manifest
    with manifest.transaction() as db:
        db.execute(PRUNED_SCHEMA)
        ensure_clips_table(db)
    _sweep(root, manifest)
    _checkpoint(manifest)
    report = PruneReport(bytes_before=store_bytes(root))
    max_gb, max_age = cfg.store.max_gb, cfg.store.max_age_days
    if max_age is not None:
        cutoff = now - timedelta(days=max_age)
        old = [it for it in _candidates(manifest) if it.when < cutoff]
        _prune_items(root, manifest, old, "age", report)
    if cfg.store.review_max_age_days is not None:
        from streamlabel.store.privacy_retention import expire_held_copies  # it builds on this module

        expired = expire_held_copies(store, cfg.store.review_max_age_days, now)
        for destination, n in expired.frames.items():
            report.frames[f"{destination} copies (review_max_age_days)"] = n
        report.freed += expired.bytes
    report.bytes_after = store_bytes(root)
    if max_gb is not None:
        report.limit_bytes = int(max_gb * BYTES_PER_GB)
        excess = report.bytes_after - report.limit_bytes
        if excess > 0:
            chosen, gain = [], 0
            for it in _candidates(manifest):
                if gain >= excess:
                    break
                chosen.append(it)
                gain += sum(_size(root / f) for f in it.files)
            _prune_items(root, manifest, chosen, "size", report)
            _checkpoint(manifest)
            report.bytes_after = store_bytes(root)
            report.over_limit = report.bytes_after > report.limit_bytes
            if report.over_limit:
                log.warning(
                    "store is %.1f MB, over store.max_gb (%.1f MB): the rest is pending or awaits delivery",
                    report.bytes_after / 1e6,
                    report.limit_bytes / 1e6,
                )
    if report.freed:
        log.info("%s", report.summary())
    return report


def _candidates(manifest: Any) -> Iterator[_Item]:
    """Prunable items in pruning order: review/rejected frames, clips, delivered dataset frames; oldest first."""
    undelivered_frames = {r[0] for r in manifest.query(_UNDELIVERED)}
    undelivered_clips = {r[0] for r in manifest.query(_UNDELIVERED.replace("frame_id", "clip_id"))}
    delivered_frames = {
        r[0] for r in manifest.query("SELECT DISTINCT frame_id FROM outbox WHERE delivered IS NOT NULL")
    }
    frames = manifest.query(
        "SELECT frame_id, split, image, label, time FROM frames WHERE image IS NOT NULL AND split != 'pending'"
    )
    by_age = sorted(frames, key=lambda r: (_utc(r["time"]), r["frame_id"]))
    first = [
        _Item("frame", r["frame_id"], r["split"], _paths(r["image"], r["label"]), _utc(r["time"]))
        for r in by_age
        if r["split"] in ("review", "rejected") and r["frame_id"] not in undelivered_frames
    ]
    # The unpainted review copy beside a dataset copy (store.md): pruned like a review frame, the dataset copy stays.
    holds = manifest.query("SELECT frame_id, hold_image, hold_label, time FROM frames WHERE hold = 'review'")
    first += [
        _Item("hold", r["frame_id"], "review", _paths(r["hold_image"], r["hold_label"]), _utc(r["time"]))
        for r in holds
        if r["hold_image"] and r["frame_id"] not in undelivered_frames
    ]
    # The unpainted original a decision kept for its undo (store/originals.py): after it, that undo is refused.
    originals = manifest.query("SELECT frame_id, original, time FROM frames WHERE original IS NOT NULL")
    first += [_Item("original", r["frame_id"], "original", (r["original"],), _utc(r["time"])) for r in originals]
    yield from sorted(first, key=lambda it: (it.when, it.ref))
    clips = manifest.query("SELECT clip_id, path, sidecar, start_time FROM clips WHERE path IS NOT NULL")
    for r in sorted(clips, key=lambda r: (_utc(r["start_time"]), r["clip_id"])):
        if r["clip_id"] not in undelivered_clips:
            yield _Item("clip", r["clip_id"], None, _paths(r["path"], r["sidecar"]), _utc(r["start_time"]))
    for r in by_age:
        fid = r["frame_id"]
        if r["split"] == "dataset" and fid in delivered_frames and fid not in undelivered_frames:
            yield _Item("frame", fid, "dataset", _paths(r["image"], r["label"]), _utc(r["time"]))


_UNDELIVERED = "SELECT DISTINCT frame_id FROM outbox WHERE delivered IS NULL AND frame_id IS NOT NULL"


def _prune_items(root: Path, manifest: Any, items: list[_Item], reason: str, report: PruneReport) -> None:
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        sizes = [sum(_size(root / f) for f in it.files) for it in batch]
        with manifest.transaction() as db:
            ids = [_mark(db, it, size, reason) for it, size in zip(batch, sizes, strict=True)]
        for it, size in zip(batch, sizes, strict=True):
            for f in it.files:
                (root / f).unlink(missing_ok=True)
            report.freed += size
            if it.kind == "clip":
                report.clips += 1
            else:
                report.frames[it.split or ""] = report.frames.get(it.split or "", 0) + 1
        with manifest.transaction() as db:
            db.executemany("UPDATE pruned SET done = 1 WHERE id = ?", [(i,) for i in ids])


def _mark(db: sqlite3.Connection, it: _Item, size: int, reason: str) -> int:
    now = utc_now()
    if it.kind == "frame":
        db.execute("UPDATE frames SET image = NULL, label = NULL WHERE frame_id = ?", (it.ref,))
    elif it.kind == "hold":
        db.execute("UPDATE frames SET hold_image = NULL, hold_label = NULL WHERE frame_id = ?", (it.ref,))
    elif it.kind == "original":
        db.execute("UPDATE frames SET original = NULL WHERE frame_id = ?", (it.ref,))
    else:
        db.execute("UPDATE clips SET path = NULL, sidecar = NULL, pruned = ? WHERE clip_id = ?", (now, it.ref))
    cur = db.execute(
        "INSERT INTO pruned (kind, ref, split, files, bytes, reason, pruned) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (it.kind, it.ref, it.split, "\n".join(it.files), size, reason, now),
    )
    return int(cur.lastrowid or 0)


def _sweep(root: Path, manifest: Any) -> None:
    """Delete files a pruned row names that are still there (a crash between the manifest update and unlink)."""
    rows = manifest.query("SELECT id, files FROM pruned WHERE done = 0")
    for r in rows:
        for f in r["files"].splitlines():
            if (root / f).exists():
                (root / f).unlink(missing_ok=True)
                log.info("removed %s left over by an interrupted prune", f)
    if rows:
        with manifest.transaction() as db:
            db.executemany("UPDATE pruned SET done = 1 WHERE id = ?", [(r["id"],) for r in rows])


def _paths(*paths: str | None) -> tuple[str, ...]:
    return tuple(p for p in paths if p)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
