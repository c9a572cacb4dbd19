"""Consistency check of a store: manifest rows, image and label files must agree."""

from __future__ import annotations

from pathlib import Path

from streamlabel.stages.polygon import parse_yolo_line
from streamlabel.store.dataset import INTENT_FILE
from streamlabel.store.manifest import Manifest
from streamlabel.store.staging import CLIP_INTENT_FILE

# The event every frame of a split must have in the outbox (transactional outbox: no label without its event).
SPLIT_EVENT = {"dataset": "label", "review": "review"}


def check_store(root: Path) -> list[str]:
    """Every problem found in the store at ``root`` (empty when it is consistent).

    Checks: data.yaml and the manifest exist; every file a frame row names exists; every label line parses and
    has coordinates in [0, 1]; each label file has as many lines as the manifest has written labels for it; no
    image or label file lies in the store without a frame row; every dataset or review frame has its event in the
    outbox; every clip row's MP4 and sidecar exist and no file lies in ``clips/`` without a clip row; and no
    write was left half done (the store recovers that when it is opened).
    """
    problems: list[str] = []
    if not (root / "data.yaml").is_file():
        problems.append("data.yaml is missing")
    if not (root / "manifest.sqlite").is_file():
        return [*problems, "manifest.sqlite is missing"]
    manifest = Manifest(root / "manifest.sqlite")
    try:
        frames = manifest.query(
            "SELECT frame_id, split, image, label, hold, hold_image, hold_label, original FROM frames"
        )
        events = {(r["frame_id"], r["kind"]) for r in manifest.query("SELECT frame_id, kind FROM outbox")}
        lines_per_frame = {
            r["frame_id"]: r["n"]
            for r in manifest.query("SELECT frame_id, COUNT(*) AS n FROM labels WHERE idx >= 0 GROUP BY frame_id")
        }
        hold_lines = {
            r["frame_id"]: r["n"]
            for r in manifest.query("SELECT frame_id, COUNT(*) AS n FROM labels WHERE hold_idx >= 0 GROUP BY frame_id")
        }
        clips = _clip_rows(manifest)
    finally:
        manifest.close()
    for intent in (INTENT_FILE, CLIP_INTENT_FILE):
        if (root / intent).exists():
            problems.append(f"{intent}: a write was cut short; opening the store removes its files")
    problems += _check_clips(root, clips)
    known: set[str] = set()
    for row in frames:
        for split in (row["split"], row["hold"]):
            kind = SPLIT_EVENT.get(split)
            if kind and (row["frame_id"], kind) not in events:
                problems.append(f"{row['frame_id']}: {split} frame without its {kind} event in the outbox")
        for rel in (row["image"], row["label"], row["hold_image"], row["hold_label"], row["original"]):
            if rel is None:
                continue
            known.add(rel)
            if not (root / rel).is_file():
                problems.append(f"{row['frame_id']}: {rel} is missing")
        if row["label"] and (root / row["label"]).is_file():
            problems += _check_label_file(root / row["label"], lines_per_frame.get(row["frame_id"], 0))
        if row["hold_label"] and (root / row["hold_label"]).is_file():
            problems += _check_label_file(root / row["hold_label"], hold_lines.get(row["frame_id"], 0))
    for path in root.rglob("*"):
        if path.suffix in (".jpg", ".txt") and path.is_file() and not path.name.startswith("."):
            rel = str(path.relative_to(root))
            if rel not in known and not rel.startswith("models/"):  # training runs' own copies (docs/training.md)
                problems.append(f"{rel} has no manifest row")
    return problems


def _check_label_file(path: Path, expected_lines: int) -> list[str]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    problems = []
    if len(lines) != expected_lines:
        problems.append(f"{path.name}: {len(lines)} lines, manifest has {expected_lines} labels")
    for i, line in enumerate(lines):
        try:
            _, poly = parse_yolo_line(line)
        except ValueError as exc:
            problems.append(f"{path.name}:{i + 1}: {exc}")
            continue
        if len(poly) < 3 or poly.min() < 0 or poly.max() > 1:
            problems.append(f"{path.name}:{i + 1}: polygon out of [0, 1] or under 3 points")
    return problems


def _clip_rows(manifest: Manifest) -> list[dict[str, str | None]]:
    if not manifest.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'clips'"):
        return []
    return [dict(r) for r in manifest.query("SELECT clip_id, path, sidecar FROM clips")]


def _check_clips(root: Path, clips: list[dict[str, str | None]]) -> list[str]:
    """Rows whose MP4 or sidecar is gone (pruned rows name none), and files in ``clips/`` without a row."""
    problems = []
    known: set[str] = set()
    for row in clips:
        for rel in (row["path"], row["sidecar"]):
            if rel is None:
                continue
            known.add(rel)
            if not (root / rel).is_file():
                problems.append(f"clip {row['clip_id']}: {rel} is missing")
    folder = root / "clips"
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rel = str(path.relative_to(root))
                if rel not in known:
                    problems.append(f"{rel} has no clips row")
    return problems
