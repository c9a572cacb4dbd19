"""Crash safety of the store's writes: an intent file names the files of the write in progress.

Two kinds of write, one intent file (``.writing.json`` beside ``data.yaml``; the store serializes writes):

- **write** (a new frame): the files are written in place (atomically each), then the frame's rows and events
  commit in one transaction. A crash before the commit leaves files without a row: opening the store removes
  them. ``{"frame_id", "files": [...]}``.
- **render** (a stored frame laid out again: pending retry, a person's decision): the new files are staged
  beside their targets as hidden ``.<name>.staged`` files, the rows change in one transaction that also bumps
  ``frames.rev``, then the staged files are renamed into place and the files no copy names any more are
  deleted. ``{"kind": "render", "frame_id", "rev", "staged": {target: staged}, "obsolete": [...]}``. Opening the
  store after a crash rolls forward when the manifest has that ``rev`` (renames what is left, deletes the
  obsolete files) and back otherwise (deletes the staged files): the store is as before or as after.
- **clip** (``clips/<stream>/<clip_id>.mp4`` + its ``.json`` sidecar): like a new frame, under its own intent file
  (``.writing-clip.json``: the clip thread writes while the labeler stores frames). ``{"kind": "clip", "clip_id",
  "files": [...]}``; recovery removes the files unless the ``clips`` row committed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from streamlabel.store.manifest import Manifest

log = logging.getLogger(__name__)

# Hidden file beside data.yaml naming the files of the frame being written (crash recovery).
INTENT_FILE = ".writing.json"
# The same for the clip being written (the clip thread has its own intent: it writes beside the labeler).
CLIP_INTENT_FILE = ".writing-clip.json"


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it into place.

    The file's bytes survive a crash of the process once this returns. With ``durable`` the folder is fsynced
    after the rename too, so the new name also survives a power cut (``store.durability: power``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new and removed names) to the disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staged_name(rel: str) -> str:
    """Where a re-rendered file waits for its commit: a hidden file beside its target."""
    path = Path(rel)
    return str(path.parent / f".{path.name}.staged")


class Staging:
    """Writes a frame's files and rows under the intent, and recovers a write a crash cut short."""

    def __init__(self, root: Path, manifest: Manifest, durable: bool = False, intent_file: str = INTENT_FILE) -> None:
        self.root = root
        self.manifest = manifest
        self.durable = durable  # fsync folders after renames and removals (store.durability: power)
        self.intent_file = intent_file

    @property
    def intent(self) -> Path:
        return self.root / self.intent_file

    @contextmanager
    def clip(self, clip_id: str, files: list[str]) -> Iterator[None]:
        """Write a clip's ``files`` and commit its ``clips`` row inside the block: all of them stay, or none."""
        try:
            intent = json.dumps({"kind": "clip", "clip_id": clip_id, "files": files}).encode()
            atomic_write(self.intent, intent, durable=self.durable)
            yield
        except BaseException:
            self.recover()
            raise
        self.intent.unlink(missing_ok=True)

    def insert(
        self, frame: dict[str, Any], rows: list[dict[str, Any]], files: dict[str, bytes], events: Iterable[BaseModel]
    ) -> list[str]:
        """Write a new frame's files, then insert its rows and events; returns the event ids."""
        try:
            if files:
                intent = json.dumps({"frame_id": frame["frame_id"], "files": list(files)}).encode()
                atomic_write(self.intent, intent, durable=self.durable)
                for rel, data in files.items():
                    atomic_write(self.root / rel, data, durable=self.durable)
            event_ids = self.manifest.insert_frame(frame, rows, events)
        except BaseException:
            self.recover()
            raise
        self.intent.unlink(missing_ok=True)
        return event_ids

    def replace(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        rows: list[dict[str, Any]],
        files: dict[str, bytes],
        obsolete: set[str],
        events: Iterable[BaseModel],
    ) -> list[str]:
        """Stage ``files``, commit the frame's new row, its rows and events, then swap the files in."""
        rev = int(old.get("rev") or 0) + 1
        new["rev"] = rev
        intent = {
            "kind": "render",
            "frame_id": old["frame_id"],
            "rev": rev,
            "staged": {rel: staged_name(rel) for rel in files},
            "obsolete": sorted(obsolete),
        }
        try:
            atomic_write(self.intent, json.dumps(intent).encode(), durable=self.durable)
            for rel, data in files.items():
                atomic_write(self.root / intent["staged"][rel], data, durable=self.durable)
            event_ids = self.manifest.update_frame(new, rows, events)
        except BaseException:
            self._roll_back(intent)
            raise
        self._roll_forward(intent, new)
        return event_ids

    def recover(self) -> list[str]:
        """Finish or undo the write the intent names; returns the paths removed (relative to the store)."""
        if not self.intent.is_file():
            return []
        try:
            intent = json.loads(self.intent.read_text())
        except ValueError:  # torn before its rename: nothing of that write reached the store
            intent = {"frame_id": None, "files": []}
        if intent.get("kind") == "render":
            frame = self.manifest.frame(intent["frame_id"])
            if frame is not None and int(frame["rev"]) >= int(intent["rev"]):
                removed = self._roll_forward(intent, frame)
            else:
                removed = self._roll_back(intent)
        else:
            removed = self._undo_insert(intent)
        if removed:
            log.warning("crash recovery removed %d file(s) of a cut-short write: %s", len(removed), ", ".join(removed))
        return removed

    def _committed(self, intent: dict[str, Any]) -> bool:
        """Whether the row of the write the intent names is in the manifest."""
        if intent.get("kind") == "clip":
            try:
                return bool(self.manifest.query("SELECT 1 FROM clips WHERE clip_id = ?", (intent["clip_id"],)))
            except sqlite3.OperationalError:  # no clips table yet: no clip row either
                return False
        return intent.get("frame_id") is not None and self.manifest.has_frame(intent["frame_id"])

    def _undo_insert(self, intent: dict[str, Any]) -> list[str]:
        known = self._committed(intent)
        removed: list[str] = []
        for rel in intent["files"]:
            path = self.root / rel
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            if not known and path.is_file():
                path.unlink()
                removed.append(rel)
        self.intent.unlink(missing_ok=True)
        return removed

    def _roll_back(self, intent: dict[str, Any]) -> list[str]:
        removed = []
        for staged in intent["staged"].values():
            path = self.root / staged
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            if path.is_file():
                path.unlink()
                removed.append(staged)
        self.intent.unlink(missing_ok=True)
        return removed

    def _roll_forward(self, intent: dict[str, Any], frame: dict[str, Any]) -> list[str]:
        touched: set[Path] = set()
        for rel, staged in intent["staged"].items():
            if (self.root / staged).is_file():
                os.replace(self.root / staged, self.root / rel)
                touched.add((self.root / rel).parent)
        named = {frame.get(k) for k in ("image", "label", "hold_image", "hold_label", "original")}
        removed = []
        for rel in intent["obsolete"]:
            if rel not in named and (self.root / rel).is_file():
                (self.root / rel).unlink()
                removed.append(rel)
                touched.add((self.root / rel).parent)
        if self.durable:  # the renames must reach the disk before the intent that could redo them goes
            for folder in sorted(touched):
                fsync_dir(folder)
        self.intent.unlink(missing_ok=True)
        return removed
