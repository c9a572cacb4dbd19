"""A tiny random-weight LLaVA-style vision-language model, for tests and offline smoke runs.

It has the layout of a real checkpoint (config, weights, tokenizer, image processor, chat template) and loads
through ``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained(folder)`` like production weights. Its
answers are noise: it checks plumbing, never judgement.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamlabel.config import DEFAULT_CHECKS, CheckConfig
from streamlabel.stages.prompting import build_prompt

SEED = 0
IMAGE_PX = 64  # side of the image the vision tower sees
PATCH_PX = 16  # -> (64 / 16)^2 = 16 image tokens per image
VOCAB_SIZE = 512
HIDDEN = 32
LAYERS = 2
HEADS = 2
MAX_POSITIONS = 2048

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


def build_tiny_vlm(folder: Path) -> Path:
    """Write a tiny LLaVA checkpoint (model + processor) to ``folder`` and return it; deterministic."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    tokenizer = _tokenizer()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_PX}, crop_size={"height": IMAGE_PX, "width": IMAGE_PX}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_PX,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped again by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        image_size=IMAGE_PX,
        patch_size=PATCH_PX,
        projection_dim=HIDDEN,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(IMAGE_PX // PATCH_PX) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
