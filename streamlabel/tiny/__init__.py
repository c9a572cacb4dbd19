"""Tiny random-weight models of the real architectures, and synthetic scenes.

``streamlabel selftest`` and the test fixtures use them: every model is saved to a folder and loaded back through
the same code path as production weights. Random weights give meaningless labels: these prove an installation,
not a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinyModels:
    """Paths of the saved tiny models."""

    yolo: Path
    grounding_dino: Path
    sam2_config: Path
    sam2_checkpoint: Path
    vlm: Path


def build_all(folder: Path, with_vlm: bool = True) -> TinyModels:
    """Build and save every tiny model under ``folder`` (a few seconds each on a CPU)."""
    from streamlabel.tiny.gdino import build_tiny_grounding_dino
    from streamlabel.tiny.sam2 import build_tiny_sam2
    from streamlabel.tiny.yolo import build_tiny_yolo

    yolo = build_tiny_yolo(folder / "yolo")
    gdino = build_tiny_grounding_dino(folder / "grounding-dino")
    sam_cfg, sam_ckpt = build_tiny_sam2(folder / "sam2")
    vlm = folder / "vlm"
    if with_vlm:
        from streamlabel.tiny.vlm import build_tiny_vlm

        vlm = build_tiny_vlm(vlm)
    return TinyModels(yolo, gdino, sam_cfg, sam_ckpt, vlm)


def tiny_config_dict(models: TinyModels, store: Path, streams: dict[str, str], fps: float = 5.0) -> dict:
    """A config (as a dict) that runs every stage on the tiny models with thresholds that let random outputs pass.

    Grounding and detection thresholds are 0 and the review threshold is 0 so that random weights still push
    candidates through every stage; rejected candidates are kept so the store shows what each stage produced.
    """
    return {
        "streams": {name: {"url": url, "fps": fps} for name, url in streams.items()},
        "target": {
            "anchor": {"classes": ["dog"], "min_confidence": 0.0},
            "part": {
                "prompt": "eye",
                "box_threshold": 0.0,
                "text_threshold": 0.0,
                "min_area_ratio": 0.0,
                "max_area_ratio": 1.0,
                "max_per_anchor": 2,
            },
            "validation": {"review_threshold": 0.0},
        },
        "models": {
            "device": "cpu",
            "batch_size": 4,
            "detect": {"weights": str(models.yolo), "imgsz": 320, "max_det": 2},
            "ground": {"model": str(models.grounding_dino), "batch_size": 4},
            "segment": {"config": str(models.sam2_config), "checkpoint": str(models.sam2_checkpoint)},
            # the verdict object, constrained while generated, needs up to 88 tokens with the tiny tokenizer
            "validate": {"kind": "transformers", "model": str(models.vlm), "max_new_tokens": 90},
        },
        "store": {"path": str(store), "keep_rejected": True},
        "review": {"address": None},  # tests and selftest serve no review page (no fixed port)
    }
