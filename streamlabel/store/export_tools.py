"""Exports for the labeling tools people already use: Label Studio tasks and CVAT for images 1.1 XML.

Both carry the store's labels as *predictions* with their validator confidence, so a team can review in the tool
it knows (``--include-review`` adds the parts that wait for a person). Importing the tool's decisions back is a
later step. The images are linked (or copied) into ``out/images/<stream>/<day>/<frame_id>.jpg`` as for the other
formats; ``export.export_store`` selects the frames and calls these writers.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamlabel.store.dataset import atomic_write
from streamlabel.store.export import ExportFrame, ExportLabel, link_or_copy
from streamlabel.store.manifest import Manifest

LS_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <PolygonLabels name="label" toName="image">
{labels}
  </PolygonLabels>
</View>
"""


def _verdicts(root: Path, frames: list[ExportFrame]) -> dict[int, dict[str, Any]]:
    """Label id -> its status, verdict confidence, model and reason."""
    ids = [label.label_id for frame in frames for label in frame.labels]
    manifest = Manifest(root / "manifest.sqlite")
    try:
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = manifest.query(
                "SELECT id, status, verdict_confidence, verdict_model, verdict_reason FROM labels "
                f"WHERE id IN ({', '.join('?' for _ in chunk)})",
                tuple(chunk),
            )
            out |= {int(r["id"]): dict(r) for r in rows}
        return out
    finally:
        manifest.close()


def write_label_studio(root: Path, out: Path, frames: Iterable[ExportFrame], names: list[str]) -> int:
    """``out/tasks.json`` (one task per frame, its parts as polygon predictions) and ``out/label_config.xml``."""
    frames = list(frames)
    verdicts = _verdicts(root, frames)
    tasks, n = [], 0
    for frame in frames:
        image = Path("images") / frame.rel.with_suffix(".jpg")
        link_or_copy(root / frame.image, out / image)
        results = [_ls_result(frame, label, names, verdicts.get(label.label_id, {})) for label in frame.labels]
        scores = [r["score"] for r in results if r.get("score") is not None]
        tasks.append(
            {
                "data": {"image": f"/data/local-files/?d={image}", "frame_id": frame.frame_id, "stream": frame.stream},
                "predictions": [
                    {"model_version": "streamlabel", "score": min(scores) if scores else None, "result": results}
                ],
            }
        )
        n += len(results)
    atomic_write(out / "tasks.json", json.dumps(tasks, indent=1).encode())
    labels = "\n".join(f'    <Label value="{name}"/>' for name in names)
    atomic_write(out / "label_config.xml", LS_CONFIG.format(labels=labels).encode())
    return n


def _ls_result(frame: ExportFrame, label: ExportLabel, names: list[str], verdict: dict[str, Any]) -> dict[str, Any]:
    """One Label Studio polygon region: points in percent of the image, the confidence as its score."""
    return {
        "id": f"l{label.label_id}",
        "from_name": "label",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": frame.width,
        "original_height": frame.height,
        "image_rotation": 0,
        "score": verdict.get("verdict_confidence"),
        "value": {
            "points": [[round(x * 100, 3), round(y * 100, 3)] for x, y in label.polygon.tolist()],
            "polygonlabels": [names[label.class_id]],
        },
        "meta": {"text": [f"{verdict.get('status', '')}: {verdict.get('verdict_reason') or ''}".strip()]},
    }


def write_cvat(root: Path, out: Path, frames: Iterable[ExportFrame], names: list[str]) -> int:
    """``out/annotations.xml`` in CVAT for images 1.1: one polygon per part with its status and confidence."""
    frames = list(frames)
    verdicts = _verdicts(root, frames)
    doc = ET.Element("annotations")
    ET.SubElement(doc, "version").text = "1.1"
    doc.append(_cvat_meta(len(frames), names))
    n = 0
    for image_id, frame in enumerate(frames):
        name = frame.rel.with_suffix(".jpg")
        link_or_copy(root / frame.image, out / "images" / name)
        attrs = {"id": str(image_id), "name": str(name), "width": str(frame.width), "height": str(frame.height)}
        image = ET.SubElement(doc, "image", attrs)
        for label in frame.labels:
            verdict = verdicts.get(label.label_id, {})
            points = ";".join(f"{x * frame.width:.2f},{y * frame.height:.2f}" for x, y in label.polygon.tolist())
            shape = ET.SubElement(
                image,
                "polygon",
                {"label": names[label.class_id], "source": "auto", "occluded": "0", "points": points, "z_order": "0"},
            )
            confidence = verdict.get("verdict_confidence")
            ET.SubElement(shape, "attribute", {"name": "status"}).text = str(verdict.get("status", ""))
            ET.SubElement(shape, "attribute", {"name": "confidence"}).text = (
                "" if confidence is None else f"{confidence:.4f}"
            )
            n += 1
    ET.indent(doc)
    atomic_write(out / "annotations.xml", b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(doc))
    return n


def _cvat_meta(size: int, names: list[str]) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    for key, value in (("name", "streamlabel"), ("size", str(size)), ("mode", "annotation")):
        ET.SubElement(task, key).text = value
    labels = ET.SubElement(task, "labels")
    for name in names:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "polygon"
        attributes = ET.SubElement(label, "attributes")
        for attr, kind, values in (("status", "select", "accepted\nreview"), ("confidence", "text", "")):
            node = ET.SubElement(attributes, "attribute")
            for key, value in (("name", attr), ("mutable", "false"), ("input_type", kind), ("values", values)):
                ET.SubElement(node, key).text = value
    return meta
