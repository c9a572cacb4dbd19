"""A tiny random-weight Grounding DINO (model + processor) saved to a folder, for tests and offline smoke runs.

It loads through the same path as production weights (``AutoProcessor`` / ``AutoModelForZeroShotObjectDetection``
``.from_pretrained(folder)``). With random weights its boxes mean nothing: it checks plumbing, not quality.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

SEED = 0
# The modeling code hard-codes BERT-base-uncased ids for [CLS], [SEP], '.' and '?' as the phrase delimiters, so
# the tiny vocabulary keeps those four tokens at the same ids (the rest is filler).
CLS_ID, SEP_ID, PERIOD_ID, QUESTION_ID = 101, 102, 1012, 1029
UNK_ID, MASK_ID = 100, 103
VOCAB_SIZE = 1030
WORDS = ("eye", "eyes", "dog", "cat", "nose", "ear", "left", "right", "paw", "tail", "a", "the", ",")
IMAGE_SIZE = {"shortest_edge": 128, "longest_edge": 192}


def _vocab() -> list[str]:
    """Token list indexed by id: BERT's special ids in place, a few words, filler elsewhere."""
    tokens = [f"[unused{i}]" for i in range(VOCAB_SIZE)]
    tokens[0] = "[PAD]"
    tokens[UNK_ID], tokens[CLS_ID], tokens[SEP_ID], tokens[MASK_ID] = "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    tokens[PERIOD_ID], tokens[QUESTION_ID] = ".", "?"
    for offset, word in enumerate(WORDS):
        tokens[MASK_ID + 1 + offset] = word
    return tokens


def _processor(full_size: bool = False):  # -> GroundingDinoProcessor
    """BERT WordPiece tokenizer over the tiny vocabulary plus an image processor (small resize unless full size)."""
    from transformers import BertTokenizer, GroundingDinoImageProcessor, GroundingDinoProcessor

    # transformers 5 builds BertTokenizer from a token->id dict (a ``vocab_file`` keyword is silently ignored).
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(_vocab())}, do_lower_case=True)
    image_processor = GroundingDinoImageProcessor() if full_size else GroundingDinoImageProcessor(size=dict(IMAGE_SIZE))
    return GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _config():  # -> GroundingDinoConfig
    """A few-layer Grounding DINO: Swin backbone (no timm, no download), 1-layer BERT, 16 queries, d_model 32."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        drop_path_rate=0.0,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        num_queries=16,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # 1 breaks the tied bbox heads (layer 0 ties into layers 1..n)
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
        fusion_droppath=0.0,
    )


def _full_config():  # -> GroundingDinoConfig
    """grounding-dino-tiny's architecture: the library defaults, with a Swin-T backbone built without timm."""
    from transformers import GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, out_indices=[2, 3, 4]
    )
    return GroundingDinoConfig(backbone_config=backbone)


def build_tiny_grounding_dino(folder: Path) -> Path:
    """Build, seed and save a tiny Grounding DINO and its processor into ``folder``; return ``folder``.

    Deterministic (fixed seed) and offline. The folder loads with ``AutoProcessor.from_pretrained`` and
    ``AutoModelForZeroShotObjectDetection.from_pretrained``.
    """
    return build_random_grounding_dino(folder)


def build_random_grounding_dino(folder: Path, full_size: bool = False) -> Path:
    """Like ``build_tiny_grounding_dino``; ``full_size`` builds grounding-dino-tiny's architecture instead.

    The full-size model has the default ``GroundingDinoConfig`` (Swin-T backbone, BERT-base text encoder, 900
    queries) and the production image resize (shortest edge 800), with random weights: for speed benchmarks.
    """
    import torch
    from transformers import GroundingDinoForObjectDetection

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = GroundingDinoForObjectDetection(_full_config() if full_size else _config()).eval()
    model.save_pretrained(folder)
    _processor(full_size).save_pretrained(folder)
    logger.debug("tiny Grounding DINO written to %s", folder)
    return folder
