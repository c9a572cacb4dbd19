"""A tiny random-weight SAM2 (config YAML + checkpoint) for tests.

It is the packaged ``sam2.1_hiera_t.yaml`` with every width, depth and the input size shrunk, so it loads
through the same path as production weights (a YAML path + a ``{"model": state_dict}`` checkpoint) and runs a
forward pass on the CPU in milliseconds. It checks plumbing, shapes and formats; its masks mean nothing.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PACKAGED_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
CONFIG_NAME = "tiny_sam2.yaml"
CHECKPOINT_NAME = "tiny_sam2.pt"
FULL_CONFIG_NAME = "sam2.1_hiera_t_random.yaml"
FULL_CHECKPOINT_NAME = "sam2.1_hiera_t_random.pt"
SEED = 0

IMAGE_SIZE = 256  # multiple of the backbone stride (16); SAM2's own models use 1024
EMBED_DIM = 8  # Hiera stage-1 width; doubles at each of the 4 stages
D_MODEL = 32  # neck / SAM decoder width; the decoder's 8 heads at half width need a multiple of 16
MEM_DIM = 16  # memory encoder output width
FEAT_SIZE = IMAGE_SIZE // 16  # lowest-resolution feature map side

# dotted key -> value, applied on top of the packaged tiny config
OVERRIDES: dict[str, Any] = {
    "model.image_size": IMAGE_SIZE,
    "model.num_maskmem": 2,
    "model.image_encoder.trunk.embed_dim": EMBED_DIM,
    "model.image_encoder.trunk.num_heads": 1,
    "model.image_encoder.trunk.stages": [1, 1, 2, 1],
    "model.image_encoder.trunk.global_att_blocks": [3],  # not a stage-first (pooling) block
    "model.image_encoder.trunk.window_spec": [8, 4, 8, 4],
    "model.image_encoder.trunk.window_pos_embed_bkg_spatial_size": [4, 4],
    "model.image_encoder.neck.d_model": D_MODEL,
    "model.image_encoder.neck.position_encoding.num_pos_feats": D_MODEL,
    "model.image_encoder.neck.backbone_channel_list": [
        EMBED_DIM * 8,
        EMBED_DIM * 4,
        EMBED_DIM * 2,
        EMBED_DIM,
    ],
    "model.memory_attention.d_model": D_MODEL,
    "model.memory_attention.num_layers": 1,
    "model.memory_attention.layer.d_model": D_MODEL,
    "model.memory_attention.layer.dim_feedforward": 2 * D_MODEL,
    "model.memory_attention.layer.self_attention.embedding_dim": D_MODEL,
    "model.memory_attention.layer.self_attention.feat_sizes": [FEAT_SIZE, FEAT_SIZE],
    "model.memory_attention.layer.cross_attention.embedding_dim": D_MODEL,
    "model.memory_attention.layer.cross_attention.feat_sizes": [FEAT_SIZE, FEAT_SIZE],
    "model.memory_attention.layer.cross_attention.kv_in_dim": MEM_DIM,
    "model.memory_encoder.out_dim": MEM_DIM,
    "model.memory_encoder.in_dim": D_MODEL,
    "model.memory_encoder.position_encoding.num_pos_feats": MEM_DIM,
    "model.memory_encoder.mask_downsampler.embed_dim": D_MODEL,
    "model.memory_encoder.fuser.layer.dim": D_MODEL,
    "model.memory_encoder.fuser.num_layers": 1,
}


def tiny_sam2_config(full_size: bool = False) -> Any:
    """The model config (an OmegaConf DictConfig): the packaged Hiera-T config, with OVERRIDES unless full size."""
    from omegaconf import OmegaConf

    text = (resources.files("sam2") / PACKAGED_CONFIG).read_text(encoding="utf-8")
    cfg = OmegaConf.create(text)
    for key, value in ({} if full_size else OVERRIDES).items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def build_tiny_sam2(folder: Path) -> tuple[Path, Path]:
    """Write a tiny SAM2 config YAML and a seeded random-weight checkpoint into ``folder``.

    Returns ``(config_path, checkpoint_path)``; load them with
    ``SegmentModelConfig(config=..., checkpoint=...)``.
    The same seed gives the same weights on every call.
    """
    return build_random_sam2(folder)


def build_random_sam2(folder: Path, full_size: bool = False) -> tuple[Path, Path]:
    """Like ``build_tiny_sam2``; ``full_size`` keeps SAM2.1 Hiera-T's real architecture (for speed benchmarks)."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_sam2_config(full_size)
    config_path = folder / (FULL_CONFIG_NAME if full_size else CONFIG_NAME)
    OmegaConf.save(cfg, config_path)

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(SEED)
        model = instantiate(cfg.model, _recursive_=True)
    finally:
        torch.random.set_rng_state(generator_state)
    checkpoint_path = folder / (FULL_CHECKPOINT_NAME if full_size else CHECKPOINT_NAME)
    torch.save({"model": model.state_dict()}, checkpoint_path)
    logger.info("tiny SAM2 written to %s (%d parameters)", folder, sum(p.numel() for p in model.parameters()))
    return config_path, checkpoint_path
