"""Exports: COCO loads in pycocotools, its polygons match the YOLO export, selection by stream and time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

from streamlabel.cli import app
from streamlabel.stages.polygon import parse_yolo_line, polygon_to_mask
from streamlabel.store.export import ExportError, Selection, export_store, parse_time
from tests.store.synthetic import T0, fill_store, new_store

STATUSES = [["accepted"], ["accepted", "accepted"], ["accepted", "rejected"], ["review"], ["rejected"], ["pending"]]


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    store = new_store(root)
    fill_store(store, "cam", STATUSES)
    fill_store(store, "yard", [["accepted"]] * 3, start=T0 + timedelta(hours=1))
    store.close()
    return root


def yolo_polygons(out: Path) -> dict[str, list[np.ndarray]]:
    """Frame id -> normalized polygons of every label file in a YOLO export."""
    return {
        p.stem: [parse_yolo_line(line)[1] for line in p.read_text().splitlines()]
        for p in sorted((out / "labels").rglob("*.txt"))
    }


def test_coco_matches_yolo_both_ways(store_root: Path, tmp_path: Path) -> None:
    coco_out, yolo_out = tmp_path / "coco", tmp_path / "yolo"
    coco_report = export_store(store_root, "coco", coco_out)
    yolo_report = export_store(store_root, "yolo", yolo_out)
    # cam: 3 dataset frames with 1 + 2 + 1 accepted labels; yard: 3 frames with one each.
    assert (coco_report.frames, coco_report.labels) == (yolo_report.frames, yolo_report.labels) == (6, 7)
    coco = COCO(str(coco_out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["eye"]
    yolo = yolo_polygons(yolo_out)
    assert set(yolo) == {img["frame_id"] for img in coco.dataset["images"]}
    for img in coco.dataset["images"]:
        assert (coco_out / "images" / img["file_name"]).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        polys = yolo[img["frame_id"]]
        assert len(anns) == len(polys)
        for ann, poly in zip(anns, polys, strict=True):
            w, h = img["width"], img["height"]
            pixels = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
            # COCO -> YOLO and YOLO -> COCO: the coordinates agree to rounding.
            np.testing.assert_allclose(pixels / [w, h], poly, atol=1e-4)
            np.testing.assert_allclose(poly * [w, h], pixels, atol=0.01)
            coco_mask = coco.annToMask(ann).astype(bool)
            # The YOLO polygon rasterized by pycocotools is the same mask; OpenCV's rasterizer (the one Ultralytics
            # uses) draws boundary pixels in, so on these small parts it agrees to IoU > 0.8.
            rle = mask_utils.frPyObjects([(poly * [w, h]).ravel().tolist()], h, w)
            np.testing.assert_array_equal(mask_utils.decode(mask_utils.merge(rle)).astype(bool), coco_mask)
            yolo_mask = polygon_to_mask(poly * [w, h], h, w)
            assert (coco_mask & yolo_mask).sum() / (coco_mask | yolo_mask).sum() > 0.8
            x, y, bw, bh = ann["bbox"]
            assert ann["area"] == pytest.approx(coco_mask.sum(), rel=0.15)
            assert (x, y) == pytest.approx(tuple(pixels.min(axis=0)), abs=0.01)
            assert (x + bw, y + bh) == pytest.approx(tuple(pixels.max(axis=0)), abs=0.01)


def test_yolo_export_is_self_contained(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    export_store(store_root, "yolo", out, Selection(stream="cam"))
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert "path" not in data and data["train"] == "images" and data["names"] == {0: "eye"}
    images = sorted(p.stem for p in (out / "images").rglob("*.jpg"))
    assert images == sorted(yolo_polygons(out)) and len(images) == 3
    assert all(fid.startswith("cam_") for fid in images)


def test_include_review_and_time_window(store_root: Path, tmp_path: Path) -> None:
    with_review = export_store(store_root, "yolo", tmp_path / "r", Selection(stream="cam", include_review=True))
    assert (with_review.frames, with_review.labels) == (4, 5)
    window = Selection(since=T0 + timedelta(seconds=0.5), until=T0 + timedelta(hours=1))
    report = export_store(store_root, "coco", tmp_path / "w", window)
    doc = json.loads((tmp_path / "w/annotations.json").read_text())
    assert report.frames == 2 and [i["frame_id"][-2:] for i in doc["images"]] == ["01", "02"]


def test_empty_selection_writes_valid_empty_export(store_root: Path, tmp_path: Path) -> None:
    report = export_store(store_root, "coco", tmp_path / "e", Selection(stream="nope"))
    assert report.frames == 0
    coco = COCO(str(tmp_path / "e/annotations.json"))
    assert coco.getImgIds() == [] and coco.getCatIds() == [1]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-11-22", "2026-11-22T00:00:00+00:00"),
        ("2026-11-22T10:30:00", "2026-11-22T10:30:00+00:00"),
        ("2026-11-22T12:30:00+02:00", "2026-11-22T10:30:00+00:00"),
        ("2026-11-22T10:30:00Z", "2026-11-22T10:30:00+00:00"),
    ],
)
def test_parse_time(text: str, iso: str) -> None:
    assert parse_time(text).isoformat() == iso


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not an ISO 8601"):
        parse_time("yesterday")
    with pytest.raises(ExportError, match="no store"):
        export_store(tmp_path, "coco", tmp_path / "out")


def write_config(tmp_path: Path, store_root: Path) -> Path:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"store:\n  path: {store_root}\n")
    return cfg


def test_cli_export(store_root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, store_root)
    runner = CliRunner()
    res = runner.invoke(app, ["export", "-c", str(cfg), "--format", "yolo", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "exported 7 labels on 6 frames" in res.output
    res = runner.invoke(
        app, ["export", "-c", str(cfg), "--format", "coco", "--out", str(tmp_path / "o2"), "--since", "x"]
    )
    assert res.exit_code != 0 and "not an ISO 8601" in res.output
    empty = runner.invoke(
        app, ["export", "-c", str(cfg), "--format", "coco", "--out", str(tmp_path / "o3"), "--stream", "none"]
    )
    assert empty.exit_code == 0 and "nothing selected" in empty.output
    cfg2 = write_config(tmp_path, tmp_path / "missing")
    res = runner.invoke(app, ["export", "-c", str(cfg2), "--format", "coco", "--out", str(tmp_path / "o4")])
    assert res.exit_code != 0 and "no store" in res.output
