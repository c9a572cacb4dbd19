"""The dataset store: images, YOLO-seg labels, data.yaml and the SQLite manifest."""

from streamlabel.store.dataset import DatasetStore, StoredFrame, atomic_write, frame_split
from streamlabel.store.manifest import Manifest

__all__ = ["DatasetStore", "Manifest", "StoredFrame", "atomic_write", "frame_split"]
