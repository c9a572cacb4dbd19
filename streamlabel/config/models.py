"""``models``: the weights and backend of each stage, and where they run."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from streamlabel.config.base import _Model


class DetectModelConfig(_Model):
    """Stage 1: anchor detector."""

    kind: str = Field("ultralytics", description="Backend: 'ultralytics'.")
    weights: str = Field(
        "yolo11m.pt",
        description="Ultralytics weights: a release name (yolo11m.pt) or a local .pt, OpenVINO folder, .onnx "
        "or .engine.",
    )
    imgsz: int = Field(640, ge=32, description="Inference size in pixels. Larger finds smaller anchors, slower.")
    half: bool = Field(True, description="Half precision on CUDA (ignored on the CPU).")
    max_det: int = Field(
        10, ge=1, description="Most anchors kept per frame, best first. Each one costs a grounding crop."
    )


class GroundModelConfig(_Model):
    """Stage 2: open-vocabulary part grounding."""

    kind: str = Field("transformers", description="Backend: 'transformers' (Grounding DINO).")
    model: str = Field(
        "IDEA-Research/grounding-dino-tiny",
        description="Hugging Face id or local folder of a Grounding DINO checkpoint.",
    )
    batch_size: int = Field(16, ge=1, description="Crops per forward pass. Larger is faster, uses more memory.")


class SegmentModelConfig(_Model):
    """Stage 3: box-prompted segmentation."""

    kind: str = Field("sam2", description="Backend: 'sam2'.")
    model: str = Field(
        "facebook/sam2.1-hiera-tiny",
        description="Hugging Face id of a SAM2 checkpoint; ignored when config and checkpoint are set.",
    )
    config: str | None = Field(
        None,
        description="SAM2 model config: a packaged name (configs/sam2.1/sam2.1_hiera_t.yaml) or a YAML path.",
    )
    checkpoint: str | None = Field(None, description="Local SAM2 checkpoint (.pt) to load with 'config'.")
    keep_largest_component: bool = Field(
        True, description="Keep only the largest connected region of each mask (drops speckles)."
    )
    fill_holes_px: int = Field(64, ge=0, description="Fill holes up to this many pixels inside a mask. 0 keeps holes.")
    polygon_tolerance_px: float = Field(
        1.0,
        ge=0,
        description="Polygon simplification tolerance in pixels. Higher gives shorter labels, coarser shapes.",
    )


class ValidateModelConfig(_Model):
    """Stage 4: vision-language validation."""

    kind: str = Field("ollama", description="Backend: 'ollama' (HTTP) or 'transformers' (in process).")
    model: str = Field(
        "gemma4:e4b",
        description="Ollama model tag, or a Hugging Face id / local folder for 'transformers'.",
    )
    host: str = Field("http://127.0.0.1:11434", description="Ollama server URL.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one verdict.")
    retries: int = Field(3, ge=0, description="Retries of a failed request before the candidate stays pending.")
    concurrency: int = Field(
        2, ge=1, description="Verdicts requested at once. Match it to OLLAMA_NUM_PARALLEL on the server."
    )
    max_new_tokens: int = Field(384, ge=16, description="Longest answer the model may give.")
    crop_scale: float = Field(
        3.0, ge=1, description="Zoomed crop around the part: its box grown by this factor (the model sees both)."
    )


class ModelsConfig(_Model):
    """Model weights and where they run."""

    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description=(
            "Weights dtype for transformers models and SAM2's autocast; 'auto' is bfloat16 on CUDA, float32 on CPU. "
            "An explicit value applies on either."
        ),
    )
    batch_size: int = Field(
        8, ge=1, description="Sampled frames labeled together (across streams). Larger uses the GPU better."
    )
    overlap: bool = Field(
        True,
        description="Detect, ground and segment the next batch while this one is validated and stored, so the GPU "
        "does not wait for the VLM and the disk. Off: one batch at a time.",
    )
    detect: DetectModelConfig = Field(default_factory=DetectModelConfig, description="Stage 1.")
    ground: GroundModelConfig = Field(default_factory=GroundModelConfig, description="Stage 2.")
    segment: SegmentModelConfig = Field(default_factory=SegmentModelConfig, description="Stage 3.")
    validate_: ValidateModelConfig = Field(
        default_factory=ValidateModelConfig, alias="validate", description="Stage 4."
    )

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)
