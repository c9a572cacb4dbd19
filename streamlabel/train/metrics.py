"""Box and mask mAP of predictions against truth polygons, computed by pycocotools (the COCO definition).

mAP50 is the average precision at IoU 0.5, mAP50-95 its mean over IoU 0.50, 0.55, ..., 0.95 (COCO's 101-point
interpolated precision, up to 100 detections per image, all object sizes). Truth and predictions are polygons in
pixels of the original image; masks are compared as run-length encodings of those polygons.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

METRIC_NAMES = ("box_map50", "box_map50_95", "mask_map50", "mask_map50_95")


@dataclass
class ImageTruth:
    """The true parts of one image: polygons in pixels (each (K, 2)) and the image size."""

    height: int
    width: int
    polygons: list[np.ndarray] = field(default_factory=list)


@dataclass
class ImagePrediction:
    """What a model found in one image: a polygon in pixels and a score per part."""

    polygons: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def _rle(poly: np.ndarray, height: int, width: int) -> dict:
    flat = [np.asarray(poly, np.float64).reshape(-1).tolist()]
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, height, width))
    rle["counts"] = rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
    return rle


def _bbox(poly: np.ndarray) -> list[float]:
    p = np.asarray(poly, np.float64).reshape(-1, 2)
    x1, y1 = p.min(axis=0)
    x2, y2 = p.max(axis=0)
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _usable(poly: np.ndarray) -> bool:
    return len(np.asarray(poly).reshape(-1, 2)) >= 3


def _coco(truth: list[ImageTruth]) -> COCO:
    images, annotations = [], []
    for i, t in enumerate(truth):
        images.append({"id": i, "height": t.height, "width": t.width})
        for poly in filter(_usable, t.polygons):
            rle = _rle(poly, t.height, t.width)
            box = _bbox(poly)
            ann = {"id": len(annotations) + 1, "image_id": i, "category_id": 1, "iscrowd": 0}
            annotations.append(ann | {"segmentation": rle, "bbox": box, "area": float(mask_utils.area(rle))})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "part"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def _detections(truth: list[ImageTruth], preds: list[ImagePrediction], iou_type: str) -> list[dict]:
    """COCO results for one IoU type: a result with a ``bbox`` must not carry a ``segmentation`` (``loadRes``
    would replace the mask by the box)."""
    out = []
    for i, (t, p) in enumerate(zip(truth, preds, strict=True)):
        for poly, score in zip(p.polygons, p.scores, strict=True):
            if not _usable(poly):
                continue
            det = {"image_id": i, "category_id": 1, "score": float(score)}
            if iou_type == "bbox":
                out.append(det | {"bbox": _bbox(poly)})
            else:
                out.append(det | {"segmentation": _rle(poly, t.height, t.width)})
    return out


def _average_precision(gt: COCO, dets: list[dict], iou_type: str) -> tuple[float, float]:
    if not dets:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        res = gt.loadRes([dict(d) for d in dets])
        ev = COCOeval(gt, res, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


def mean_average_precision(truth: list[ImageTruth], preds: list[ImagePrediction]) -> dict[str, float | None]:
    """``box_map50``, ``box_map50_95``, ``mask_map50``, ``mask_map50_95`` of ``preds`` (one per image of ``truth``).

    None for every figure when the truth has no part at all (precision of nothing is undefined); 0.0 when there
    is truth but no prediction.
    """
    if len(truth) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(truth)} images: give one (maybe empty) per image")
    gt = _coco(truth)
    if not gt.dataset["annotations"]:
        return dict.fromkeys(METRIC_NAMES, None)
    box50, box = _average_precision(gt, _detections(truth, preds, "bbox"), "bbox")
    mask50, mask = _average_precision(gt, _detections(truth, preds, "segm"), "segm")
    return {"box_map50": box50, "box_map50_95": box, "mask_map50": mask50, "mask_map50_95": mask}
