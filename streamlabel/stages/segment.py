"""Stage 3: SAM2 turns each part box into a mask and a polygon.

``models.segment.mode: crop`` (the default) segments the parts of each anchor on a crop around them (see
``segment_crop``), so small parts get masks at a useful resolution; ``full`` segments whole frames.

The model comes from one of three places, in this order:

1. ``config`` + ``checkpoint``: a packaged config name (``configs/sam2.1/sam2.1_hiera_t.yaml``) goes through
   ``sam2.build_sam.build_sam2``; a YAML file is built the same way (OmegaConf + hydra instantiate).
2. ``model`` naming a local folder holding one ``*.yaml`` config and one ``*.pt`` checkpoint: loaded as in 1.
3. ``model`` as a Hugging Face id (``facebook/sam2.1-hiera-tiny``): ``SAM2ImagePredictor.from_pretrained``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from streamlabel.config import SegmentModelConfig, TargetConfig
from streamlabel.frames import POLYGON_KEY
from streamlabel.stages.base import ModelUnavailableError, Runtime
from streamlabel.stages.compiling import compiled, warm_up
from streamlabel.stages.polygon import MIN_POLYGON_POINTS, clean_mask, mask_to_polygon
from streamlabel.stages.segment_crop import paste_masks, plan_crops

log = logging.getLogger(__name__)

STAGE = "segment"
# the overrides build_sam2 applies on top of a config (fall back to multi-mask when one mask is unstable)
POSTPROCESSING = {
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
}
FPN_LEVELS = 3  # the image predictor reads three feature maps: strides 4, 8 and 16


class Sam2Segmenter:
    """Box-prompted SAM2: every part box of a frame (full mode) or of an anchor (crop mode) decoded together.

    ``segment`` keeps the incoming rows (and their data keys) whose mask is not empty after clean-up and whose
    polygon has at least 3 points, and fills ``mask`` (N, H, W) bool, ``data["polygon"]`` (object array of
    float32 (K, 2) pixel coordinates) and ``data["mask_score"]`` (SAM's predicted IoU, float32).
    ``predictor`` replaces the loaded model (tests, benchmarks): anything with SAM2ImagePredictor's
    ``set_image_batch``, ``predict_batch`` and ``model.image_size``.
    """

    def __init__(
        self, cfg: SegmentModelConfig, target: TargetConfig, runtime: Runtime, predictor: Any | None = None
    ) -> None:
        self.cfg = cfg
        self.target = target
        self.runtime = runtime
        if predictor is None:
            self.model_id, self._predictor = _load_predictor(cfg, runtime)
            _fit_feature_sizes(self._predictor)
            if runtime.compile != "off":
                self._compile_encoder()
        else:
            self.model_id, self._predictor = type(predictor).__name__, predictor
        # a crop is never magnified more than crop_max_upscale into SAM2's square input
        self.min_crop_side_px = float(self._predictor.model.image_size) / cfg.crop_max_upscale
        log.info("segment model %s loaded on %s (%s, %s mode)", self.model_id, runtime.device, runtime.dtype, cfg.mode)

    def _compile_encoder(self) -> None:
        """Compile SAM2's image encoder (``model.forward_image``, shared by every predictor of this model) and run it
        on one and two images, so both graphs exist before labeling starts. Prompts and mask decoding stay eager."""
        import torch

        model = self._predictor.model
        model.forward_image = compiled(model.forward_image, self.runtime.compile, "SAM2 image encoder")
        gray = np.full((64, 64, 3), 114, dtype=np.uint8)

        def encode(n: int) -> None:
            with torch.inference_mode(), self._autocast():
                self._predictor.set_image_batch([gray] * n)

        warm_up("SAM2 image encoder", [lambda: encode(1), lambda: encode(2)])

    def new_predictor(self) -> Any:
        """A SAM2ImagePredictor of its own over this segmenter's loaded model (the review page's clicks).

        A predictor keeps per-image state (``set_image``): sharing this one would mix another caller's image into
        the labeler's; the weights are shared, not copied.
        """
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        predictor = SAM2ImagePredictor(self._predictor.model)
        _fit_feature_sizes(predictor)
        return predictor

    def segment(self, images: Sequence[np.ndarray], parts: Sequence[sv.Detections]) -> list[sv.Detections]:
        """Mask every part box; one Detections per image, in order.

        Images without parts are not sent to the model; they come back with no rows and an empty ``mask``,
        ``polygon`` and ``mask_score``.
        """
        if len(images) != len(parts):
            raise ValueError(f"segment got {len(images)} images but {len(parts)} part lists")
        out = [_no_masks(p, img.shape[:2]) if len(p) == 0 else p for img, p in zip(images, parts, strict=True)]
        todo = [i for i, p in enumerate(parts) if len(p) > 0]
        if not todo:
            return out
        todo_images, todo_parts = [images[i] for i in todo], [parts[i] for i in todo]
        if self.cfg.mode == "crop":
            masks, scores = self._predict_crops(todo_images, todo_parts)
        else:
            masks, scores = self._predict(todo_images, [p.xyxy for p in todo_parts])
        for i, frame_masks, frame_scores in zip(todo, masks, scores, strict=True):
            out[i] = self._finish(parts[i], frame_masks, frame_scores)
        return out

    def _predict_crops(
        self, images: list[np.ndarray], parts: list[sv.Detections]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """SAM2 on one crop per anchor with parts, masks pasted back: per frame (N, H, W) bool and (N,) scores."""
        shapes = [img.shape for img in images]
        crops = plan_crops(parts, shapes, self.cfg.crop_context, self.min_crop_side_px)
        crop_images = [crop.cut(images[crop.frame]) for crop in crops]
        crop_boxes = [crop.boxes_in_crop(parts[crop.frame].xyxy) for crop in crops]
        crop_masks, crop_scores = self._predict(crop_images, crop_boxes)
        return paste_masks(crops, crop_masks, crop_scores, [len(p) for p in parts], shapes)

    def _predict(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run SAM2 on images (frames or crops), ``cfg.batch_size`` per encoder pass.

        Returns per image an (N, H, W) bool mask array at the image's size and (N,) float32 scores.
        """
        masks: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        step = self.cfg.batch_size
        for start in range(0, len(images), step):
            chunk_masks, chunk_scores = self._predict_chunk(images[start : start + step], boxes[start : start + step])
            masks.extend(chunk_masks)
            scores.extend(chunk_scores)
        return masks, scores

    def _predict_chunk(
        self, images: list[np.ndarray], boxes: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One set_image_batch and one batched predict (all boxes of an image together)."""
        import torch

        with torch.inference_mode(), self._autocast():
            self._predictor.set_image_batch([np.ascontiguousarray(img) for img in images])
            raw_masks, raw_scores, _ = self._predictor.predict_batch(
                box_batch=[np.asarray(b, dtype=np.float32) for b in boxes], multimask_output=False
            )
        masks, scores = [], []
        for img, b, m, s in zip(images, boxes, raw_masks, raw_scores, strict=True):
            # predict squeezes a single box's batch axis: (1, H, W) for one box, (N, 1, H, W) for several
            masks.append(np.asarray(m).reshape(len(b), *img.shape[:2]) > 0)
            scores.append(np.asarray(s, dtype=np.float32).reshape(len(b)))
        return masks, scores

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to the runtime dtype (SAM2's weights stay float32); nothing for float32.

        'auto' is bfloat16 on CUDA and float32 on the CPU; an explicit bfloat16 also autocasts on the CPU, which
        is how the tests exercise the reduced-precision path without a GPU.
        """
        import torch

        if self.runtime.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast("cuda" if self.runtime.cuda else "cpu", dtype=self.runtime.torch_dtype())

    def _finish(self, parts: sv.Detections, masks: np.ndarray, scores: np.ndarray) -> sv.Detections:
        """Clean masks, make polygons, drop rows left without a usable mask."""
        cfg = self.cfg
        cleaned = [clean_mask(m, cfg.keep_largest_component, cfg.fill_holes_px) for m in masks]
        polygons = [mask_to_polygon(m, cfg.polygon_tolerance_px) for m in cleaned]
        keep = np.array(
            [m.any() and len(p) >= MIN_POLYGON_POINTS for m, p in zip(cleaned, polygons, strict=True)],
            dtype=bool,
        )
        if not keep.all():
            log.debug("segment dropped %d of %d parts with an empty mask", int((~keep).sum()), len(keep))
        kept_masks = np.stack(cleaned)[keep]
        kept_polygons = [p for p, k in zip(polygons, keep, strict=True) if k]
        return _with_masks(parts[keep], kept_masks, kept_polygons, scores[keep])


def _no_masks(parts: sv.Detections, hw: tuple[int, ...]) -> sv.Detections:
    """A frame without parts, with the segmenter's keys present and empty."""
    return _with_masks(parts, np.zeros((0, *hw), dtype=bool), [], np.zeros(0, dtype=np.float32))


def _with_masks(
    parts: sv.Detections, masks: np.ndarray, polygons: list[np.ndarray], scores: np.ndarray
) -> sv.Detections:
    """Return ``parts`` with mask, data["polygon"] and data["mask_score"] set (rows must already match)."""
    out = sv.Detections(
        xyxy=parts.xyxy,
        mask=masks.astype(bool),
        confidence=parts.confidence,
        class_id=parts.class_id,
        tracker_id=parts.tracker_id,
        data=dict(parts.data),
        metadata=dict(parts.metadata),
    )
    out.data[POLYGON_KEY] = _object_array(polygons)
    out.data["mask_score"] = scores.astype(np.float32)
    return out


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    """1-D object array holding one array per row (np.array would stack same-shape arrays into 3-D)."""
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


# --------------------------------------------------------------------------------------------- loading


def _load_predictor(cfg: SegmentModelConfig, runtime: Runtime) -> tuple[str, Any]:
    """SAM2ImagePredictor from config+checkpoint, a local folder or a hub id; returns (model id, it)."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    if cfg.config or cfg.checkpoint:
        if not (cfg.config and cfg.checkpoint):
            raise ValueError(
                "models.segment.config and models.segment.checkpoint must be set together "
                f"(got config={cfg.config!r}, checkpoint={cfg.checkpoint!r})"
            )
        return cfg.checkpoint, SAM2ImagePredictor(_build_local(cfg.config, cfg.checkpoint, runtime.device))
    folder = Path(cfg.model).expanduser()
    if folder.is_dir():
        config, checkpoint = _folder_files(folder)
        return cfg.model, SAM2ImagePredictor(_build_local(str(config), str(checkpoint), runtime.device))
    return cfg.model, _from_hub(cfg.model, runtime.device)


def _folder_files(folder: Path) -> tuple[Path, Path]:
    """The one ``*.yaml`` config and one ``*.pt`` checkpoint in a local model folder."""
    configs, checkpoints = sorted(folder.glob("*.yaml")), sorted(folder.glob("*.pt"))
    if len(configs) != 1 or len(checkpoints) != 1:
        raise ModelUnavailableError(
            STAGE,
            str(folder),
            str(folder),
            f"a local SAM2 folder needs exactly one *.yaml and one *.pt (found {len(configs)} and {len(checkpoints)})",
        )
    return configs[0], checkpoints[0]


def _build_local(config: str, checkpoint: str, device: str) -> Any:
    """SAM2Base from a config (packaged name or YAML path) and a local checkpoint."""
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.is_file():
        raise ModelUnavailableError(STAGE, checkpoint, str(ckpt.resolve()), "no such checkpoint file")
    yaml_path = Path(config).expanduser()
    if yaml_path.is_file():
        return _build_from_yaml(yaml_path, ckpt, device)
    return _build_packaged(config, ckpt, device)


def _build_packaged(config: str, ckpt: Path, device: str) -> Any:
    """build_sam2 for a config packaged with sam2 (found by hydra's config search path)."""
    from hydra.errors import MissingConfigException
    from sam2.build_sam import build_sam2

    try:
        return build_sam2(config, str(ckpt), device=device)
    except MissingConfigException as exc:
        looked = f"{Path(config).expanduser().resolve()} and the configs packaged with sam2"
        raise ModelUnavailableError(STAGE, config, looked, "no such config") from exc


def _build_from_yaml(yaml_path: Path, ckpt: Path, device: str) -> Any:
    """What build_sam2 does, for a config file outside the sam2 package: instantiate, load weights, eval."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(yaml_path)
    for key, value in POSTPROCESSING.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{ckpt}: not a SAM2 checkpoint (expected a dict with a 'model' state dict)")
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{ckpt} does not match the model in {yaml_path}: {exc}") from None
    return model.to(device).eval()


def _from_hub(model_id: str, device: str) -> Any:
    """SAM2ImagePredictor.from_pretrained; unknown ids and failed downloads raise ModelUnavailableError."""
    from huggingface_hub.errors import HfHubHTTPError
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    if model_id not in HF_MODEL_ID_TO_FILENAMES:
        known = ", ".join(sorted(HF_MODEL_ID_TO_FILENAMES))
        raise ModelUnavailableError(
            STAGE,
            model_id,
            f"the hub ids sam2 knows ({known})",
            "unknown id; set models.segment.config and checkpoint for other weights",
        )
    try:
        return SAM2ImagePredictor.from_pretrained(model_id, device=device)
    except (OSError, HfHubHTTPError) as exc:
        raise ModelUnavailableError(STAGE, model_id, "the Hugging Face cache and hub", str(exc)) from exc


def _fit_feature_sizes(predictor: Any) -> None:
    """Set the predictor's feature-map sizes from the model's input size.

    SAM2ImagePredictor hard-codes the sizes of a 1024-pixel model; this gives the same values there and the
    right ones for other input sizes (the tiny test model uses 256).
    """
    model = predictor.model
    side = model.image_size // model.backbone_stride
    predictor._bb_feat_sizes = [(side * 2**k, side * 2**k) for k in reversed(range(FPN_LEVELS))]
