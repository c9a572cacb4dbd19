"""``streamlabel export --format label-studio`` and ``--format cvat``: the store's parts as predictions with scores."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from streamlabel.store import DatasetStore, Selection, export_store
from tests.review.conftest import label_ids


def confidences(store: DatasetStore) -> dict[int, float]:
    rows = store.manifest.query("SELECT id, verdict_confidence FROM labels")
    return {int(r[0]): float(r[1]) for r in rows}


def test_label_studio_tasks_carry_polygons_in_percent_and_scores(store: DatasetStore, tmp_path: Path) -> None:
    report = export_store(store.root, "label-studio", tmp_path / "ls", Selection(include_review=True))
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text())
    wanted = set(label_ids(store, "accepted")) | set(label_ids(store, "review"))
    results = [r for t in tasks for p in t["predictions"] for r in p["result"]]
    assert report.labels == len(results) and {int(r["id"][1:]) for r in results} <= wanted
    assert len(results) >= 5
    scores = confidences(store)
    for task in tasks:
        image = tmp_path / "ls" / task["data"]["image"].split("?d=")[1]
        assert image.is_file() and image.read_bytes()[:2] == b"\xff\xd8"
        for r in task["predictions"][0]["result"]:
            points = r["value"]["points"]
            assert all(0 <= v <= 100 for pt in points for v in pt) and len(points) >= 3
            assert r["score"] == scores[int(r["id"][1:])] and r["value"]["polygonlabels"] == ["eye"]
        assert task["predictions"][0]["score"] == min(r["score"] for r in task["predictions"][0]["result"])
    config = ET.parse(tmp_path / "ls" / "label_config.xml").getroot()
    assert config.find("PolygonLabels/Label").get("value") == "eye"  # type: ignore[union-attr]


def test_cvat_xml_has_pixel_polygons_with_status_and_confidence(store: DatasetStore, tmp_path: Path) -> None:
    report = export_store(store.root, "cvat", tmp_path / "cvat", Selection())
    doc = ET.parse(tmp_path / "cvat" / "annotations.xml").getroot()
    assert doc.findtext("version") == "1.1"
    images = doc.findall("image")
    assert doc.findtext("meta/task/size") == str(len(images)) and images
    polygons = doc.findall("image/polygon")
    assert len(polygons) == report.labels == len(label_ids(store, "accepted"))
    for image in images:
        w, h = float(image.get("width")), float(image.get("height"))  # type: ignore[arg-type]
        assert (tmp_path / "cvat" / "images" / image.get("name")).is_file()  # type: ignore[operator]
        for poly in image.findall("polygon"):
            pts = [tuple(map(float, p.split(","))) for p in poly.get("points").split(";")]  # type: ignore[union-attr]
            assert len(pts) >= 3 and all(0 <= x <= w and 0 <= y <= h for x, y in pts)
            attrs = {a.get("name"): a.text for a in poly.findall("attribute")}
            assert attrs["status"] == "accepted" and 0 < float(attrs["confidence"]) <= 1  # type: ignore[arg-type]
