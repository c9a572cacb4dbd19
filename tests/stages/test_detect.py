"""Stage 1 through the real Ultralytics backend: a tiny random YOLO, and the real YOLO11n on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamlabel.config import Config, DetectModelConfig, TargetConfig
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.detect import UltralyticsDetector


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamlabel.tiny.yolo import build_tiny_yolo

    return build_tiny_yolo(tmp_path_factory.mktemp("yolo"))


def detector(weights: str, classes: list[str], conf: float, imgsz: int = 320, max_det: int = 5) -> UltralyticsDetector:
    cfg = Config.model_validate(
        {
            "target": {"anchor": {"classes": classes, "min_confidence": conf}},
            "models": {"detect": {"weights": weights, "imgsz": imgsz, "max_det": max_det}},
        }
    )
    return UltralyticsDetector(cfg.models.detect, cfg.target, Runtime())


def test_tiny_yolo_batched_output_format(tiny_yolo: Path) -> None:
    det = detector(str(tiny_yolo), ["dog"], 0.0, max_det=3)
    images = [np.full((240, 320, 3), 90, np.uint8), np.zeros((120, 200, 3), np.uint8)]
    out = det.detect(images)
    assert len(out) == 2
    for d, img in zip(out, images, strict=True):
        assert 0 < len(d) <= 3
        assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (len(d), 4)
        assert (d.xyxy[:, [0, 2]] <= img.shape[1]).all() and (d.xyxy[:, [1, 3]] <= img.shape[0]).all()
        assert set(d.data["class_name"]) == {"dog"}
        assert (d.class_id == 16).all()


@pytest.mark.parametrize("images", [[]])
def test_empty_batch(tiny_yolo: Path, images: list) -> None:
    assert detector(str(tiny_yolo), ["dog"], 0.0).detect(images) == []


def test_threshold_filters(tiny_yolo: Path) -> None:
    # The tiny model scores its favoured class about 0.5: a 0.9 threshold must return nothing.
    out = detector(str(tiny_yolo), ["dog"], 0.9).detect([np.full((240, 320, 3), 90, np.uint8)])
    assert len(out[0]) == 0


def test_unknown_anchor_class_is_a_clear_error(tiny_yolo: Path) -> None:
    with pytest.raises(ValueError, match=r"target.anchor.classes: 'dgo' not among the classes"):
        detector(str(tiny_yolo), ["dgo"], 0.5)


@pytest.fixture(scope="module")
def tiny_yolo_people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random YOLO that scores about 0.5 for 'person' boxes and finds no dog."""
    from streamlabel.tiny.yolo import build_tiny_yolo

    return build_tiny_yolo(tmp_path_factory.mktemp("yolo-people"), favoured=("person",))


def people_detector(weights: Path, checks: list[dict] | None) -> UltralyticsDetector:
    validation = {} if checks is None else {"checks": checks}
    cfg = Config.model_validate(
        {
            "target": {"anchor": {"classes": ["dog"], "min_confidence": 0.3}, "validation": validation},
            "models": {"detect": {"weights": str(weights), "imgsz": 320, "max_det": 20}},
        }
    )
    return UltralyticsDetector(cfg.models.detect, cfg.target, Runtime())


NO_HUMAN = {"name": "no_human", "question": "No human.", "scope": "frame", "detector_class": "person"}
GRAY = np.full((240, 320, 3), 90, np.uint8)


def test_the_checks_classes_come_back_beside_the_anchors(tiny_yolo_people: Path) -> None:
    """The default no_human check names 'person': the detector returns people too, and the Labeler's split keeps
    them away from the anchors (the tracker sees dogs only)."""
    from streamlabel.checks import people_of, split_detections

    (found,) = people_detector(tiny_yolo_people, None).detect([GRAY])
    assert len(found) > 0 and set(found.data["class_name"]) == {"person"} and (found.class_id == 0).all()
    anchors, others = split_detections(found, Config().target.anchor)
    assert len(anchors) == 0 and len(people_of(others)) == len(found)


@pytest.mark.parametrize(("check", "found"), [(None, 0), ({**NO_HUMAN, "detector_min_confidence": 0.6}, 0)])
def test_people_need_a_check_and_its_confidence(tiny_yolo_people: Path, check: dict | None, found: int) -> None:
    """Without a check naming 'person' it is not asked for; with one, its boxes need detector_min_confidence."""
    checks = [{"name": "mask_on_part", "question": "The mask is on the {part}."}] + ([check] if check else [])
    (rows,) = people_detector(tiny_yolo_people, checks).detect([GRAY])
    assert len(rows) == found


def test_a_detector_class_the_model_lacks_is_a_clear_error(tiny_yolo: Path) -> None:
    checks = [{"name": "no_unicorn", "question": "No unicorn.", "scope": "frame", "detector_class": "unicorn"}]
    with pytest.raises(ValueError, match=r"checks\[no_unicorn\].detector_class: 'unicorn' is not among the classes"):
        people_detector(tiny_yolo, checks)


def test_missing_weights_name_the_model_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelUnavailableError) as err:
        UltralyticsDetector(DetectModelConfig(weights="yolo11x-absent.pt"), TargetConfig(), Runtime())
    assert "yolo11x-absent.pt" in str(err.value)
    assert "streamlabel models pull" in str(err.value)


DOG_IMAGES = [
    "darknet_dog_bicycle_truck.jpg",
    "darknet_person_dog_horse.jpg",
    "autodistill_beagle_on_person.jpeg",
    "gsam2_cat_dog.jpeg",
    "coco_000000052891_dog_frisbee.jpg",
]
NO_DOG_IMAGES = ["coco_000000288685_sheep_people.jpg", "coco_000000475732_cat_laptop_person.jpg"]


@pytest.fixture(scope="module")
def real_yolo(assets: Path) -> UltralyticsDetector:
    pytest.importorskip("openvino", reason="the OpenVINO YOLO11n needs the openvino extra")
    return detector(str(assets / "models" / "yolo11n_int8_openvino_model"), ["dog"], 0.25, imgsz=640, max_det=10)


@pytest.mark.assets
@pytest.mark.parametrize(("name", "has_dog"), [(n, True) for n in DOG_IMAGES] + [(n, False) for n in NO_DOG_IMAGES])
def test_real_yolo11n_finds_dogs_only_where_there_are_dogs(
    real_yolo: UltralyticsDetector, assets: Path, name: str, has_dog: bool
) -> None:
    from streamlabel.checks import people_of, split_detections

    image = cv2.cvtColor(cv2.imread(str(assets / "images" / name)), cv2.COLOR_BGR2RGB)
    (found,) = real_yolo.detect([image])
    anchors, others = split_detections(found, real_yolo_target().anchor)
    assert (len(anchors) > 0) == has_dog, (name, anchors.confidence)
    assert set(found.data["class_name"]) <= {"dog", "person"}  # the anchor and no_human's detector class
    if has_dog:
        assert set(anchors.data["class_name"]) == {"dog"}
    if name in PEOPLE_IMAGES:  # no_human is answered by the detector: the people are found
        assert len(people_of(others)) > 0 and (others.confidence >= 0.4).all()


PEOPLE_IMAGES = {"darknet_person_dog_horse.jpg", "coco_000000288685_sheep_people.jpg"}


def real_yolo_target():
    return Config.model_validate({"target": {"anchor": {"classes": ["dog"], "min_confidence": 0.25}}}).target
