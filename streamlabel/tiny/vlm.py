"""Random-weight LLaVA-style vision-language models: a tiny one for tests, a 4B-class one for ``bench stages``.

Both have the layout of a real checkpoint (config, weights, tokenizer, image processor, chat template) and load
through ``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained(folder)`` like production weights. Their
answers are noise: the tiny one checks plumbing, the full-size one gives honest speed, neither judges.

The full-size model is a CLIP ViT-L/14 at 336 px (576 image tokens per image) in front of a decoder with the
dimensions of Phi-3-mini (3,072 wide, 32 layers, 32,064-token vocabulary): about 4.1 B parameters, the class of
the small VLMs Ollama serves for this job (Gemma 3/4 4B, Qwen2.5-VL 3B).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlabel.config import DEFAULT_CHECKS, CheckConfig
from streamlabel.stages.prompting import build_prompt

SEED = 0
VOCAB_SIZE = 512  # tokens the tokenizer learns; the full-size decoder's embedding is larger (ids past it decode to '')


@dataclass(frozen=True)
class VlmSize:
    """Dimensions of the vision tower and the decoder."""

    image_px: int  # side of the image the vision tower sees
    patch_px: int  # (image_px / patch_px)^2 image tokens per image
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_mlp: int
    hidden: int
    layers: int
    heads: int
    mlp: int
    vocab: int | None  # None: the tokenizer's size
    max_positions: int


TINY = VlmSize(64, 16, 32, 2, 2, 64, 32, 2, 2, 64, None, 2048)
FULL = VlmSize(336, 14, 1024, 24, 16, 4096, 3072, 32, 32, 8192, 32064, 4096)  # CLIP-L/14-336 + Phi-3-mini dims

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN, "<|user|>", "<|assistant|>", "<|end|>"]

# Plain role-tagged turns; images become one <image> placeholder each, which the processor expands.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _corpus() -> list[str]:
    """Text the tokenizer is trained on: the validator prompt and answers, so prompts stay short in tokens."""
    checks = [CheckConfig(**c) for c in DEFAULT_CHECKS]
    answer = {
        "observation": "a dog looks at the camera",
        "comparison": "the red mask lies on the eye",
        "checks": {c.name: True for c in checks},
        "decision": "pass",
        "confidence": 0.9,
    }
    failed = {**answer, "decision": "fail", "confidence": 0.25}
    return [
        build_prompt(checks, "dog", "eye"),
        build_prompt(checks, "cat", "nose"),
        json.dumps(answer),
        json.dumps(failed),
    ]


def _tokenizer() -> object:
    """A byte-level BPE tokenizer trained in memory, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        chat_template=CHAT_TEMPLATE,
    )


def vlm_config(size: VlmSize, tokenizer: Any) -> Any:
    """The LlavaConfig of ``size`` for ``tokenizer``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_mlp,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_px,
        patch_size=size.patch_px,
        projection_dim=size.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=size.vocab or len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.mlp,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=size.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(size.image_px // size.patch_px) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )


def build_tiny_vlm(folder: Path, *, full_size: bool = False, device: str = "cpu", dtype: str = "float32") -> Path:
    """Write a random-weight LLaVA checkpoint (model + processor) to ``folder`` and return it; deterministic.

    ``full_size`` builds the 4B-class model (about 8 GB in bfloat16: build it with ``device="cuda"``, where random
    initialisation takes seconds, and ``dtype="bfloat16"``).
    """
    import torch
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration, LlavaProcessor

    size = FULL if full_size else TINY
    folder = Path(folder)
    tokenizer = _tokenizer()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size.image_px}, crop_size={"height": size.image_px, "width": size.image_px}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=size.patch_px,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped again by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )
    config = vlm_config(size, tokenizer)
    torch.manual_seed(SEED)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=getattr(torch, dtype)).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
