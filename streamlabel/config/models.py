"""``models``: the weights and backend of each stage, and where they run."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr

from streamlabel.config.base import _Model
from streamlabel.config.student import StudentConfig


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
    tensorrt: Literal["auto", "off"] = Field(
        "auto",
        description="'auto': on CUDA, with the `tensorrt` package installed and .pt weights, export them once to a "
        "TensorRT engine cached beside the weights (it takes minutes, at the first start only) and run that. 'off': "
        "run the weights as they are.",
    )


class GroundModelConfig(_Model):
    """Stage 2: open-vocabulary part grounding."""

    kind: str = Field("transformers", description="Backend: 'transformers' (Grounding DINO).")
    model: str = Field(
        "IDEA-Research/grounding-dino-tiny",
        description="Hugging Face id or local folder of a Grounding DINO checkpoint.",
    )
    batch_size: int = Field(16, ge=1, description="Crops per forward pass. Larger is faster, uses more memory.")
    input_short_side_px: int | None = Field(
        None,
        ge=64,
        le=1333,
        description="Each crop (or frame, in full mode) is resized so its short side is this many pixels (its long "
        "side at most 5/3 of it) before Grounding DINO sees it. Empty: the size saved with the model (800 for the "
        "published checkpoints, what they were trained at). Lower is faster (the cost grows with the pixel count), "
        "and small parts are missed sooner.",
    )


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
    mode: Literal["crop", "full"] = Field(
        "crop",
        description="'crop': SAM2 sees a square crop around each anchor's parts, so a small part spans many of "
        "its mask cells (one image encoding per anchor with parts). 'full': SAM2 sees the whole frame (one "
        "encoding per frame, cheaper with many anchors per frame, coarse masks for small parts).",
    )
    crop_context: float = Field(
        3.0,
        ge=0,
        le=50,
        description="Crop mode: margin around an anchor's parts on each side, in multiples of the largest part's "
        "side. Higher gives SAM2 more context around the part, at a coarser resolution.",
    )
    crop_max_upscale: float = Field(
        4.0,
        ge=1,
        le=64,
        description="Crop mode: largest magnification of a crop into SAM2's input (input size / crop side); a "
        "smaller crop is grown until it fits. Higher resolves tiny parts more finely but feeds SAM2 blurry, "
        "out-of-scale pixels.",
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Images per SAM2 encoder pass (crops in crop mode, frames in full mode). Larger is faster on "
        "a GPU, uses more memory.",
    )
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

    kind: str = Field(
        "auto",
        description="Backend: 'auto' (Ollama when its host answers at start-up, else 'local_model' in process), "
        "'ollama' (HTTP), 'openai' (any OpenAI-compatible server: vLLM, SGLang, llama.cpp) or 'transformers' "
        "(in process).",
    )
    model: str = Field(
        "gemma4:e4b",
        description="Ollama model tag ('auto', 'ollama'), the served model name ('openai'), or a Hugging Face id / "
        "local folder ('transformers').",
    )
    host: str = Field("http://127.0.0.1:11434", description="Ollama server URL ('auto', 'ollama').")
    local_model: str = Field(
        "Qwen/Qwen3-VL-4B-Instruct",
        description="'auto' without an answering Ollama: Hugging Face id or local folder of the vision-language "
        "model run in process (Apache-2.0; `streamlabel models pull` fetches it).",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="'openai': the server's API root, up to and including /v1 (Ollama's own: http://host:11434/v1).",
    )
    api_key: SecretStr | None = Field(
        None, description="'openai': bearer token, if the server wants one. Write ${NAME}; it is never logged."
    )
    timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds one request may wait for its verdict (a 4B model on a GPU answers in a few). Higher "
        "tolerates a slower server; a hung one then holds a candidate longer before the next try.",
    )
    retries: int = Field(
        3, ge=0, description="Retries of a failed request, within max_wait_s, before the candidate stays pending."
    )
    max_wait_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="Seconds one candidate may wait for its verdict in all: every request, retry and pause between "
        "them ('ollama', 'openai'); timeout_s and retries are cut to fit. Keep it well inside systemd's "
        "WatchdogSec (3 min). Higher rides out longer server hiccups; a hung server holds the labeler that long.",
    )
    concurrency: int = Field(
        2,
        ge=1,
        description="Verdicts requested at once. Match it to OLLAMA_NUM_PARALLEL on an Ollama server; a batching "
        "server ('openai': vLLM, SGLang) answers 16-64 at once faster than one by one. Higher uses more server memory.",
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
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = Field(
        "off",
        description="torch.compile mode for SAM2's image encoder: it compiles while the models load (seconds to "
        "minutes, before the daemon reports ready) and runs faster after, on CUDA mostly. 'reduce-overhead' adds "
        "CUDA graphs. 'off': plain eager PyTorch.",
    )
    detect: DetectModelConfig = Field(default_factory=DetectModelConfig, description="Stage 1.")
    ground: GroundModelConfig = Field(default_factory=GroundModelConfig, description="Stage 2.")
    segment: SegmentModelConfig = Field(default_factory=SegmentModelConfig, description="Stage 3.")
    validate_: ValidateModelConfig = Field(
        default_factory=ValidateModelConfig, alias="validate", description="Stage 4."
    )
    student: StudentConfig = Field(
        default_factory=StudentConfig, description="A trained student compared with the pipeline (docs/student.md)."
    )

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)
