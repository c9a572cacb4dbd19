"""Clips are as crash-safe as frames: a process killed at any step of a clip write (no ``except``, no ``finally``
runs: ``os._exit`` in a child process) leaves the MP4, its sidecar and its ``clips`` row all, or none, once the
store is opened again; and ``check_store`` is clean either way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamlabel.store.check import check_store
from streamlabel.store.dataset import DatasetStore
from streamlabel.store.staging import CLIP_INTENT_FILE

# The child writes one encoded clip and dies (os._exit: like SIGKILL) right after the step named by argv[2].
CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime, timedelta
    import numpy as np
    from streamlabel.config import Config
    from streamlabel.frames import Frame
    from streamlabel.store import clips, staging
    from streamlabel.store.dataset import DatasetStore
    from streamlabel.tracking.segments import TrackSegment

    from pathlib import Path
    root, step = Path(sys.argv[1]), sys.argv[2]
    def after(fn, name, when=lambda *a: True):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            if step == name and when(*args):
                os._exit(9)
            return out
        return wrapped
    staging.atomic_write = after(staging.atomic_write, "intent", lambda path, *a: path.name == staging.CLIP_INTENT_FILE)
    clips.encode = after(clips.encode, "video")
    clips._fsync_rename = after(clips._fsync_rename, "mp4")
    clips.atomic_write = after(clips.atomic_write, "sidecar")
    clips.enqueue_event = after(clips.enqueue_event, "row")  # inside the transaction: not committed
    clips.ClipRecord = after(clips.ClipRecord, "commit")  # committed, the intent not yet removed
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    frames = [Frame("cam", i, i * 0.5, t0 + timedelta(seconds=i * 0.5), np.full((48, 64, 3), 20 * i, np.uint8))
              for i in range(8)]
    seg = TrackSegment("cam", 3, "dog", 0.5, 3.0, t0 + timedelta(seconds=0.5), t0 + timedelta(seconds=3), ())
    store = DatasetStore(root, ["eye"])
    cfg = Config.model_validate({"tracking": {"clip_pre_s": 0, "clip_post_s": 0}})
    assert clips.ClipWriter(store, cfg).write(seg, "rtsp://cam.local/live", frames) is not None
    store.close()
    """
)
STEPS = ["intent", "video", "mp4", "sidecar", "row", "commit", "none"]


def clip_state(root: Path) -> tuple[int, int, int]:
    """(MP4 files, sidecars, clips rows) after the store was opened again (its recovery ran)."""
    store = DatasetStore(root, ["eye"])
    try:
        rows = store.manifest.query("SELECT COUNT(*) FROM clips")[0][0]
    finally:
        store.close()
    return len(list(root.glob("clips/cam/*.mp4"))), len(list(root.glob("clips/cam/*.json"))), rows


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_leaves_all_three_or_none(tmp_path: Path, step: str) -> None:
    root = tmp_path / "store"
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), step], capture_output=True, text=True, timeout=300)
    assert done.returncode == (0 if step == "none" else 9), done.stderr[-3000:]
    if step not in ("none", "intent"):  # the kill left the write half done: the intent names it
        assert (root / CLIP_INTENT_FILE).is_file() or step == "commit"
    committed = step in ("commit", "none")
    assert clip_state(root) == ((1, 1, 1) if committed else (0, 0, 0))
    assert not (root / CLIP_INTENT_FILE).exists()
    assert not [p for p in root.glob("clips/cam/.*")], "temporary files were left behind"
    assert check_store(root) == []
