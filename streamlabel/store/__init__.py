"""The dataset store: images, YOLO-seg labels, data.yaml, the SQLite manifest, exports, clips and retention."""

from streamlabel.store.clips import ClipRecord, ClipWriter
from streamlabel.store.dataset import DatasetStore, StoredFrame, atomic_write, frame_split
from streamlabel.store.export import ExportError, ExportReport, Selection, export_store, parse_time
from streamlabel.store.harvest import HarvestReport, harvest_clips
from streamlabel.store.manifest import Manifest
from streamlabel.store.retention import PruneReport, prune

__all__ = [
    "ClipRecord",
    "ClipWriter",
    "DatasetStore",
    "ExportError",
    "ExportReport",
    "HarvestReport",
    "Manifest",
    "PruneReport",
    "Selection",
    "StoredFrame",
    "atomic_write",
    "export_store",
    "frame_split",
    "harvest_clips",
    "parse_time",
    "prune",
]
