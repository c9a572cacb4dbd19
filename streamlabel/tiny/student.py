"""A random-weight YOLO-seg student (one class, the part) saved as a .pt, loaded by ``YOLO(path)`` like a trained one.

Tests and ``streamlabel bench student`` use it where a run of ``streamlabel train`` would give ``best.pt``: the
architecture is the real one (yolo11n-seg by default), the weights are random, the boxes and masks meaningless.
"""

from __future__ import annotations

from pathlib import Path

# Class-logit bias of a student that finds something: sigmoid(0) = 0.5 for every anchor point, so a random head
# returns boxes (NMS keeps a few hundred at most). Ultralytics' own init (about -10) finds nothing.
FINDING_BIAS = 0.0


def build_tiny_student(
    folder: Path, part: str = "eye", finds: bool = True, seed: int = 0, arch: str = "yolo11n-seg"
) -> Path:
    """Build ``arch`` from its yaml with one class named ``part`` and random weights; save it as a .pt.

    ``finds`` sets a neutral class bias so that the model returns boxes with masks on any image; without it the
    model finds nothing (Ultralytics' prior). Returns ``<folder>/<arch>-<part>[-blind].pt``.
    """
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load

    torch.manual_seed(seed)
    spec = yaml_model_load(f"{arch}.yaml")
    spec["nc"] = 1
    model = YOLO(f"{arch}.yaml", task="segment")
    net = SegmentationModel(spec, nc=1, verbose=False)
    net.names = {0: part}
    net.args, net.task = model.model.args, "segment"  # what YOLO(yaml) sets on the model it builds
    model.model = net
    if finds:
        with torch.no_grad():
            for branch in net.model[-1].cv3:
                branch[-1].bias.fill_(FINDING_BIAS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{arch}-{part}{'' if finds else '-blind'}.pt"
    model.save(str(path))
    return path
