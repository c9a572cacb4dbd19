"""Tiny random-weight YOLO detector saved as a .pt, loaded by the same ``YOLO(path)`` call as real weights."""

from __future__ import annotations

from pathlib import Path

# The 80 COCO class names in Ultralytics' order; a model built from yaml only numbers its classes.
COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
COCO = {i: name.replace("_", " ") for i, name in enumerate(COCO_NAMES)}

# Class-logit bias that makes a random head score every box about sigmoid(0.0) = 0.5 for the favoured classes.
# Ultralytics initialises class biases very negative (a prior for rare objects), so an untouched random model
# detects nothing and the later stages would never run.
FAVOURED_BIAS = 0.0


def build_tiny_yolo(folder: Path, favoured: tuple[str, ...] = ("dog",), seed: int = 0, arch: str = "yolo11n") -> Path:
    """Build ``arch`` (YOLO11n by default) from its yaml with random weights and COCO names, save it as a .pt.

    The classes in ``favoured`` get a neutral class bias so that the random model returns boxes for them; the
    boxes are meaningless. Returns the path of the saved weights (``tiny_yolo.pt`` for YOLO11n, else
    ``<arch>_random.pt``).
    """
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO(f"{arch}.yaml", task="detect")
    net = model.model
    net.names = dict(COCO)
    head = net.model[-1]
    ids = [i for i, n in COCO.items() if n in favoured]
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias[ids] = FAVOURED_BIAS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("tiny_yolo.pt" if arch == "yolo11n" else f"{arch}_random.pt")
    model.save(str(path))
    return path
