"""DatasetStore: writes labeled frames as images + YOLO-seg labels + manifest rows, atomically.

Layout (docs/store.md): dataset copies at ``images/<train|val>/<stream>/<YYYY-MM-DD>/<frame_id>.jpg`` with their
label at the same place under ``labels/``; frames that wait for a person under ``review/``, for the validator under
``pending/`` (unpainted), kept rejections under ``rejected/``, each with the same images/labels layout.
``data.yaml`` makes the store an Ultralytics dataset. Which copies a frame gets is ``layout.plan_copies``, their
files ``frame_files.lay_out``; what a changed decision does to a stored frame is ``rerender``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from streamlabel.config.privacy import PrivacyConfig
from streamlabel.events.frames import frame_events
from streamlabel.frames import FrameResult
from streamlabel.store.frame_files import CopySettings, frame_day, held_bytes, lay_out
from streamlabel.store.layout import SPLIT_ROOTS as SPLIT_ROOTS  # re-exported: the folder of each destination
from streamlabel.store.layout import (
    BackgroundSampler,
    Copies,
    PartState,
    Subset,
    copy_relpaths,
    plan_copies,
    subset_of,
)
from streamlabel.store.manifest import Manifest
from streamlabel.store.originals import plan_original
from streamlabel.store.rerender import apply_updates, dropped, obsolete_files, read_unpainted
from streamlabel.store.rerender import unpainted_copy as unpainted_copy_of
from streamlabel.store.rows import encode_jpeg, label_row, part_states
from streamlabel.store.staging import CLIP_INTENT_FILE, Staging
from streamlabel.store.staging import INTENT_FILE as INTENT_FILE  # re-exported: check_store looks for it
from streamlabel.store.staging import atomic_write as atomic_write  # re-exported: exports and harvest write with it
from streamlabel.store.stored import StoredFrame as StoredFrame  # re-exported: what write returns
from streamlabel.store.stored import frame_row, stored_frame

if TYPE_CHECKING:
    from streamlabel.config import Config

log = logging.getLogger(__name__)


def split_relpaths(stream: str, day: str, frame_id: str, split: str, subset: str | None = None) -> tuple[str, str]:
    """Image and label paths of a frame's copy in ``split``, relative to the store root (``layout.copy_relpaths``)."""
    return copy_relpaths(stream, day, frame_id, split, subset)


def frame_split(statuses: list[str]) -> str | None:
    """The ``split`` of a frame's manifest row from its parts' statuses; None when nothing is kept.

    The dataset when a part is accepted (its other parts are painted out there), else pending or review (the
    frame waits whole), else rejected. ``layout.plan_copies`` also weighs flags and rejection kinds.
    """
    copies = plan_copies([PartState(s) for s in statuses])
    return str(copies.split) if copies.kept else None


class DatasetStore:
    """The dataset folder; one instance per process. ``write`` and the re-renders are serialized by a lock.

    Each stored frame's events (label for a dataset copy, review for a review copy, rejected when
    ``publish_rejected``) enter the outbox in the same transaction as its rows. Opening a store first finishes
    or undoes a write that a crash cut short (``staging.Staging``).
    """

    def __init__(
        self,
        root: Path,
        class_names: list[str],
        jpeg_quality: int = 95,
        keep_rejected: bool = False,
        publish_rejected: bool = False,
        *,
        val_fraction: float = 0.1,
        background_fraction: float = 0.05,
        ignore_margin_px: int = 4,
        durability: str = "process",
        privacy: PrivacyConfig | None = None,
    ) -> None:
        self.root = root
        self.class_names = class_names
        self.jpeg_quality = jpeg_quality
        self.keep_rejected = keep_rejected
        self.publish_rejected = publish_rejected
        self.val_fraction = val_fraction
        self.ignore_margin_px = ignore_margin_px
        self.backgrounds = BackgroundSampler(background_fraction)
        root.mkdir(parents=True, exist_ok=True)
        self.durable = durability == "power"  # fsync folders after renames too (store.durability)
        self.privacy = privacy or PrivacyConfig()
        self.private_dropped: Counter[str] = Counter()  # frames with people not stored (privacy.people: drop)
        self.manifest = Manifest(root / "manifest.sqlite", durability)
        self.written: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # frames already in the manifest, per stream
        self._lock = threading.RLock()
        self._subsets: dict[tuple[str, str], str] = {}  # camera-day -> train | val
        self._staging = Staging(root, self.manifest, self.durable)
        self.recovered = self._staging.recover()
        self.recovered += Staging(root, self.manifest, self.durable, CLIP_INTENT_FILE).recover()  # a clip's write
        self._write_data_yaml()

    @classmethod
    def from_config(cls, cfg: Config, root: Path | None = None, publish_rejected: bool | None = None) -> DatasetStore:
        """Open the store of ``cfg`` (at ``root`` instead of ``store.path`` when given) with every store setting;
        rejected events are published when ``mqtt.publish_rejected`` says so, unless ``publish_rejected`` is given."""
        s = cfg.store
        if publish_rejected is None:
            publish_rejected = bool(cfg.mqtt and cfg.mqtt.publish_rejected)
        return cls(
            Path(s.path) if root is None else root,
            [cfg.target.part.class_name],
            s.jpeg_quality,
            s.keep_rejected,
            publish_rejected,
            val_fraction=s.val_fraction,
            background_fraction=s.background_fraction,
            ignore_margin_px=s.ignore_margin_px,
            durability=s.durability,
            privacy=cfg.privacy,
        )

    def _write_data_yaml(self) -> None:
        for subset in Subset:
            (self.root / "images" / subset).mkdir(parents=True, exist_ok=True)
        data = {
            "path": str(self.root.resolve()),
            "train": "images/train",
            "val": "images/val",
            "names": dict(enumerate(self.class_names)),
        }
        text = "# Ultralytics dataset file written by streamlabel: yolo segment train data=<this file>\n"
        atomic_write(
            self.root / "data.yaml", (text + yaml.safe_dump(data, sort_keys=False)).encode(), durable=self.durable
        )

    def relpaths(self, result: FrameResult, split: str) -> tuple[str, str]:
        """Image and label paths of a frame's copy in ``split``, relative to the store root."""
        f = result.frame
        day = f"{f.time:%Y-%m-%d}"
        return split_relpaths(f.stream, day, f.frame_id, split, self._subset(f.stream, day))

    def last_frame(self, stream: str) -> tuple[int, float] | None:
        """``(seq, pts)`` of the newest stored frame of ``stream`` (by capture time), or None when it has none.

        Frames the store did not keep (no part, a background not sampled) are not in the manifest.
        """
        return self.manifest.last_frame(stream)

    # ------------------------------------------------------------------------------------------------- write

    def write(self, result: FrameResult, config_hash: str) -> StoredFrame | None:
        """Store one frame's result: files first (atomically, under the intent), then its rows in one transaction.

        Returns None when nothing is kept, and when the frame is already in the manifest (a re-read after a
        restart): then nothing on disk changes and the frame is counted in ``skipped``.
        """
        f = result.frame
        with self._lock:
            if self.manifest.has_frame(f.frame_id):
                self._skip(f.stream, f.frame_id)
                return None
            if self.privacy.people == "drop" and len(result.people):
                self._drop_private(f.stream)
                return None
            rows = [label_row(result, j, self.class_names[0]) for j in range(len(result.parts))]
            copies = plan_copies(part_states(rows))
            background = not copies.kept and self._background(result)
            if not copies.kept and not background:
                return None
            frame = frame_row(result, config_hash, background)
            if background:
                copies = Copies(dataset=True)
            unpainted = encode_jpeg(f.image, self.jpeg_quality, f.frame_id)
            held = held_bytes(result, unpainted, self.privacy, self.jpeg_quality)
            files = self._lay_out(frame, rows, copies, f.image, unpainted, held)
            events = frame_events(frame, rows, self.publish_rejected)
            event_ids = self._staging.insert(frame, rows, files, events)
        self.written[frame["split"]] += 1
        return stored_frame(self.root, frame, rows, event_ids)

    def _drop_private(self, stream: str) -> None:
        if not self.private_dropped[stream]:
            log.info("stream %s: frames with a person are not stored (privacy.people: drop; counted)", stream)
        self.private_dropped[stream] += 1

    def _skip(self, stream: str, frame_id: str) -> None:
        if not self.skipped[stream]:
            log.info(
                "stream %s: frame %s is already in the manifest (a re-read); stored frames are skipped, not "
                "rewritten (counted in skipped)",
                stream,
                frame_id,
            )
        self.skipped[stream] += 1

    def _background(self, result: FrameResult) -> bool:
        """Whether a frame without parts is kept as a negative: no anchor, no person, and its turn in the rate."""
        if len(result.anchors) or len(result.people):
            return False
        return self.backgrounds.take(result.frame.stream)

    def _lay_out(
        self,
        frame: dict[str, Any],
        rows: list[dict[str, Any]],
        copies: Copies,
        image: np.ndarray,
        unpainted: bytes,
        held: bytes | None = None,
    ) -> dict[str, bytes]:
        """``frame_files.lay_out`` in the frame's train/val subset with the store's current settings; ``held``
        defaults to ``unpainted``."""
        subset = frame.get("subset") or self._subset(frame["stream"], frame_day(frame))
        settings = CopySettings(self.jpeg_quality, self.keep_rejected, self.ignore_margin_px)
        held = unpainted if held is None else held
        return lay_out(frame, rows, copies, image, unpainted, held, subset, settings)

    def _subset(self, stream: str, day: str) -> str:
        """Train or val for a camera-day: where its stored frames went, else the hash (``layout.subset_of``).

        Sticky, so that a changed ``store.val_fraction`` moves only camera-days not stored yet.
        """
        key = (stream, day)
        if key not in self._subsets:
            self._subsets[key] = self.manifest.day_subset(stream, day) or subset_of(stream, day, self.val_fraction)
        return self._subsets[key]

    # ---------------------------------------------------------------------------------------------- re-render

    def render_dataset_copy(
        self,
        frame_id: str,
        label_updates: dict[int, dict[str, Any]] | None = None,
        publish: bool = False,
        keep_original: bool = False,
    ) -> StoredFrame:
        """Lay a stored frame out again from its unpainted copy and its label rows (after a decision changed).

        ``label_updates`` maps a label row ``id`` to the columns that change (status, verdict, rejection...);
        they are committed in the same transaction as the frame's new copies (and its events when ``publish``:
        the pending retry publishes as if judged the first time; a person's decision publishes its own).
        New files are staged under the intent and renamed after the commit; a crash either way leaves the
        store as before or as after (``staging.Staging.recover``). Raises KeyError for an unknown frame and
        FileNotFoundError when the frame keeps no readable unpainted copy. ``keep_original`` (a person's decision)
        keeps the unpainted pixels as ``frames.original`` when the new layout would lose them (store/originals.py).
        """
        with self._lock:
            frame, rows = self._stored_rows(frame_id)
            data, image = read_unpainted(self.root, frame_id, self.unpainted_copy(frame, rows))
            apply_updates(rows, label_updates)
            copies = Copies(dataset=True) if frame["background"] else plan_copies(part_states(rows))
            new = dict(frame)
            files = self._lay_out(new, rows, copies, image, data)
            files |= plan_original(frame, new, copies, data, keep_original)
            events = frame_events(new, rows, self.publish_rejected) if publish else []
            event_ids = self._staging.replace(frame, new, rows, files, obsolete_files(frame, new, files), events)
        return stored_frame(self.root, new, rows, event_ids)

    def _stored_rows(self, frame_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The manifest's frame row and label rows of ``frame_id``; KeyError when it is not in the manifest."""
        frame = self.manifest.frame(frame_id)
        if frame is None:
            raise KeyError(f"frame {frame_id!r} is not in the manifest of {self.root}")
        return frame, self.manifest.labels_of(frame_id)

    def unpainted_copy(self, frame: dict[str, Any], rows: list[dict[str, Any]]) -> str:
        """The path (relative to the store) of the frame's copy with its original pixels (``rerender.unpainted_copy``);
        FileNotFoundError when there is none on disk."""
        return unpainted_copy_of(self.root, frame, rows)

    def drop_copies(self, frame_id: str, reason: str) -> StoredFrame:
        """Give up the copies that wait for a decision (their image is gone): their parts become rejected.

        Parts that wait (pending, review; every part when the frame has no dataset copy) are rejected as
        ``poor_label`` with ``reason`` as their verdict reason, so they stay ignore regions of a dataset copy.
        The dataset copy, whose label file holds only accepted parts, is kept as it is.
        """
        with self._lock:
            frame, rows = self._stored_rows(frame_id)
            new, obsolete = dropped(frame, rows, reason)
            self._staging.replace(frame, new, rows, {}, obsolete, [])
        return stored_frame(self.root, new, rows, [])

    def close(self) -> None:
        self.manifest.close()
