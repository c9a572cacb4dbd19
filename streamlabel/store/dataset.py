"""DatasetStore: writes labeled frames as images + YOLO-seg labels + manifest rows, atomically.

Layout (docs/store.md): dataset copies at ``images/<train|val>/<stream>/<YYYY-MM-DD>/<frame_id>.jpg`` with their
label at the same place under ``labels/``; frames that wait for a person under ``review/``, for the validator under
``pending/`` (unpainted), kept rejections under ``rejected/``, each with the same images/labels layout.
``data.yaml`` makes the store an Ultralytics dataset. Which copies a frame gets is ``layout.plan_copies``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from streamlabel.config.privacy import PrivacyConfig
from streamlabel.events.frames import frame_events
from streamlabel.frames import FrameResult
from streamlabel.privacy import apply_privacy
from streamlabel.store.layout import SPLIT_ROOTS as SPLIT_ROOTS  # re-exported: the folder of each destination
from streamlabel.store.layout import (
    BackgroundSampler,
    Copies,
    Destination,
    PartState,
    Subset,
    copy_relpaths,
    paint_ignore_regions,
    plan_copies,
    subset_of,
)
from streamlabel.store.manifest import Manifest
from streamlabel.store.originals import plan_original
from streamlabel.store.rows import (
    decode_jpeg,
    encode_jpeg,
    label_row,
    label_text,
    part_states,
    pixel_polygon,
)
from streamlabel.store.staging import CLIP_INTENT_FILE, Staging, atomic_write
from streamlabel.store.staging import INTENT_FILE as INTENT_FILE  # re-exported: check_store looks for it

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


@dataclass(frozen=True)
class StoredFrame:
    """What the store wrote for one frame: its main copy and, beside a dataset copy, the copy that waits."""

    frame_id: str
    split: str
    image: Path | None
    label: Path | None
    labels: int
    event_ids: tuple[str, ...] = ()
    hold: str | None = None
    hold_image: Path | None = None
    hold_label: Path | None = None
    background: bool = False


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
            frame = self._frame_row(result, config_hash, background)
            if background:
                copies = Copies(dataset=True)
            unpainted = encode_jpeg(f.image, self.jpeg_quality, f.frame_id)
            held = self._held_copy(result, unpainted)
            files = self._lay_out(frame, rows, copies, f.image, unpainted, held)
            events = frame_events(frame, rows, self.publish_rejected)
            event_ids = self._staging.insert(frame, rows, files, events)
        self.written[frame["split"]] += 1
        return self._stored(frame, rows, event_ids)

    def _held_copy(self, result: FrameResult, unpainted: bytes) -> bytes:
        """The bytes of the copies kept outside the dataset (review, pending, rejected): people pixelated with
        ``privacy.people: blur`` (docs/privacy.md); the frame as captured otherwise."""
        if self.privacy.people != "blur" or not len(result.people):
            return unpainted
        blurred = apply_privacy(result.frame.image, result.people.xyxy, self.privacy)
        assert blurred is not None  # blur never drops
        return encode_jpeg(blurred, self.jpeg_quality, result.frame.frame_id)

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

    def _frame_row(self, result: FrameResult, config_hash: str, background: bool) -> dict[str, Any]:
        f = result.frame
        return {
            "frame_id": f.frame_id,
            "stream": f.stream,
            "seq": f.seq,
            "pts": f.pts,
            "time": f.time.isoformat(),
            "width": f.width,
            "height": f.height,
            "config_hash": config_hash,
            "background": int(background),
        }

    def _lay_out(
        self,
        frame: dict[str, Any],
        rows: list[dict[str, Any]],
        copies: Copies,
        image: np.ndarray,
        unpainted: bytes,
        held: bytes | None = None,
    ) -> dict[str, bytes]:
        """Fill the frame's copy columns and the rows' ``idx``/``hold_idx``; returns the files (path -> bytes).

        ``unpainted`` is the frame as captured (the dataset copy where nothing is painted out); ``held`` the bytes
        of every copy outside the dataset (default: ``unpainted``).
        """
        held = unpainted if held is None else held
        fid, stream, w, h = frame["frame_id"], frame["stream"], frame["width"], frame["height"]
        day = datetime.fromisoformat(frame["time"]).strftime("%Y-%m-%d")
        subset = frame.get("subset") or self._subset(stream, day)
        split = copies.split
        for r in rows:
            r["idx"], r["hold_idx"] = -1, -1
        for k, j in enumerate(copies.primary_rows):
            rows[j]["idx"] = k
        files: dict[str, bytes] = {}
        image_rel = label_rel = None
        if split != Destination.REJECTED or self.keep_rejected:
            image_rel, label_rel = copy_relpaths(stream, day, fid, split, subset)
            painted = self._painted(image, rows, copies) if split == Destination.DATASET else None
            plain = unpainted if split == Destination.DATASET else held
            files[image_rel] = plain if painted is None else encode_jpeg(painted, self.jpeg_quality, fid)
            files[label_rel] = label_text([rows[j] for j in copies.primary_rows], w, h)
        hold, hold_image, hold_label = copies.second_hold, None, None
        if hold is not None:
            hold_image, hold_label = copy_relpaths(stream, day, fid, hold)
            for k, j in enumerate(copies.hold_rows):
                rows[j]["hold_idx"] = k
            files[hold_image] = held
            files[hold_label] = label_text([rows[j] for j in copies.hold_rows], w, h)
        frame |= {"split": str(split), "image": image_rel, "label": label_rel, "subset": str(subset)}
        frame |= {"hold": str(hold) if hold else None, "hold_image": hold_image, "hold_label": hold_label}
        return files

    def _subset(self, stream: str, day: str) -> str:
        """Train or val for a camera-day: where its stored frames went, else the hash (``layout.subset_of``).

        Sticky, so that a changed ``store.val_fraction`` moves only camera-days not stored yet.
        """
        key = (stream, day)
        if key not in self._subsets:
            self._subsets[key] = self.manifest.day_subset(stream, day) or subset_of(stream, day, self.val_fraction)
        return self._subsets[key]

    def _painted(self, image: np.ndarray, rows: list[dict[str, Any]], copies: Copies) -> np.ndarray | None:
        """The dataset copy's pixels with the ignore regions painted out; None when there is nothing to paint."""
        if not copies.ignore_rows:
            return None
        h, w = image.shape[:2]
        boxes = np.array([json.loads(rows[j]["xyxy"]) for j in copies.ignore_rows], np.float64)
        keep = [pixel_polygon(rows[j], w, h) for j in copies.dataset_rows]
        return paint_ignore_regions(image, boxes, keep, self.ignore_margin_px)

    def _stored(self, frame: dict[str, Any], rows: list[dict[str, Any]], event_ids: list[str]) -> StoredFrame:
        def path(rel: str | None) -> Path | None:
            return None if rel is None else self.root / rel

        return StoredFrame(
            frame["frame_id"],
            frame["split"],
            path(frame["image"]),
            path(frame["label"]),
            sum(1 for r in rows if r["idx"] >= 0),
            tuple(event_ids),
            frame.get("hold"),
            path(frame.get("hold_image")),
            path(frame.get("hold_label")),
            bool(frame.get("background")),
        )

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
            frame = self.manifest.frame(frame_id)
            if frame is None:
                raise KeyError(f"frame {frame_id!r} is not in the manifest of {self.root}")
            rows = self.manifest.labels_of(frame_id)
            source = self.unpainted_copy(frame, rows)
            for row in rows:
                row |= (label_updates or {}).get(row["id"], {})
            copies = Copies(dataset=True) if frame["background"] else plan_copies(part_states(rows))
            data = (self.root / source).read_bytes()
            image = decode_jpeg(data)
            if image is None:
                raise FileNotFoundError(f"frame {frame_id}: {self.root / source} is not a readable JPEG")
            old = {frame[k] for k in ("image", "label", "hold_image", "hold_label", "original") if frame.get(k)}
            new = dict(frame)
            files = self._lay_out(new, rows, copies, image, data)
            files |= plan_original(frame, new, copies, data, keep_original)
            events = frame_events(new, rows, self.publish_rejected) if publish else []
            obsolete = old - set(files) - {new["original"]}
            event_ids = self._staging.replace(frame, new, rows, files, obsolete, events)
        return self._stored(new, rows, event_ids)

    def unpainted_copy(self, frame: dict[str, Any], rows: list[dict[str, Any]]) -> str:
        """The path (relative to the store) of the frame's copy with its original pixels.

        The original a decision kept (store/originals.py); the hold copy beside a dataset copy; the frame's only
        copy when it has no dataset copy; the dataset copy itself while none of its parts is painted out. Raises
        FileNotFoundError when there is none on disk.
        """
        if frame.get("original"):
            rel = frame["original"]
        elif frame["hold_image"]:
            rel = frame["hold_image"]
        elif frame["split"] != Destination.DATASET or frame["background"]:
            rel = frame["image"]
        else:
            painted = plan_copies(part_states(rows)).ignore_rows
            rel = None if painted else frame["image"]
        if not rel or not (self.root / rel).is_file():
            where = f"{self.root / rel} is missing" if rel else "its dataset copy is painted and no other is kept"
            raise FileNotFoundError(f"frame {frame['frame_id']}: no unpainted copy ({where})")
        return rel

    def drop_copies(self, frame_id: str, reason: str) -> StoredFrame:
        """Give up the copies that wait for a decision (their image is gone): their parts become rejected.

        Parts that wait (pending, review; every part when the frame has no dataset copy) are rejected as
        ``poor_label`` with ``reason`` as their verdict reason, so they stay ignore regions of a dataset copy.
        The dataset copy, whose label file holds only accepted parts, is kept as it is.
        """
        with self._lock:
            frame = self.manifest.frame(frame_id)
            if frame is None:
                raise KeyError(f"frame {frame_id!r} is not in the manifest of {self.root}")
            rows = self.manifest.labels_of(frame_id)
            in_dataset = frame["split"] == Destination.DATASET
            for row in rows:
                if row["status"] in ("pending", "review") or (not in_dataset and row["status"] == "accepted"):
                    row |= {"status": "rejected", "rejection": "poor_label", "verdict_reason": reason}
                row["hold_idx"] = -1
            new = dict(frame) | {"hold": None, "hold_image": None, "hold_label": None}
            if not in_dataset:
                new |= {"split": str(Destination.REJECTED), "image": None, "label": None}
            old = {frame[k] for k in ("image", "label", "hold_image", "hold_label") if frame[k]}
            kept = {new[k] for k in ("image", "label") if new[k]}
            self._staging.replace(frame, new, rows, {}, old - kept, [])
        return self._stored(new, rows, [])

    def close(self) -> None:
        self.manifest.close()
