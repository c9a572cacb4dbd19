"""The YAML configuration as pydantic v2 models, and ``load()`` with ``${ENV}`` substitution.

Every field has a description: ``docs/config.md`` and ``streamlabel check`` read them. Errors name the key path
and the line of the file, and loading reports every problem of a file at once. One module per section.
"""

from __future__ import annotations

from streamlabel.config.loading import ConfigError, ConfigIssue, load, parse
from streamlabel.config.models import (
    DetectModelConfig,
    GroundModelConfig,
    ModelsConfig,
    SegmentModelConfig,
    ValidateModelConfig,
)
from streamlabel.config.mqtt import MqttConfig, TlsConfig
from streamlabel.config.novelty import NoveltyConfig
from streamlabel.config.privacy import PrivacyConfig
from streamlabel.config.review import ReviewConfig
from streamlabel.config.root import STREAM_NAME, Config
from streamlabel.config.service import DaemonConfig, StoreConfig
from streamlabel.config.streams import StreamConfig
from streamlabel.config.target import (
    DEFAULT_CHECKS,
    AnchorConfig,
    CheckConfig,
    PartConfig,
    TargetConfig,
    ValidationConfig,
    rejection_of,
)
from streamlabel.config.tracking import TrackingConfig

__all__ = [
    "DEFAULT_CHECKS",
    "STREAM_NAME",
    "AnchorConfig",
    "CheckConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DaemonConfig",
    "DetectModelConfig",
    "GroundModelConfig",
    "ModelsConfig",
    "MqttConfig",
    "NoveltyConfig",
    "PartConfig",
    "PrivacyConfig",
    "ReviewConfig",
    "SegmentModelConfig",
    "StoreConfig",
    "StreamConfig",
    "TargetConfig",
    "TlsConfig",
    "TrackingConfig",
    "ValidateModelConfig",
    "ValidationConfig",
    "load",
    "parse",
    "rejection_of",
]
