"""Ingest: PyAV sources (files, RTSP, HTTP, V4L2), timestamp sampling, reader threads with reconnect."""

from streamlabel.streams.clock import StreamClock
from streamlabel.streams.options import SourceKind, open_options, resolve_hwaccel, source_kind
from streamlabel.streams.reader import QueueItem, StreamEnd, StreamReader, StreamStatus
from streamlabel.streams.sampling import Sampler
from streamlabel.streams.source import SourceError, is_live, iter_sampled, open_container, redact

__all__ = [
    "QueueItem",
    "Sampler",
    "SourceError",
    "SourceKind",
    "StreamClock",
    "StreamEnd",
    "StreamReader",
    "StreamStatus",
    "is_live",
    "iter_sampled",
    "open_container",
    "open_options",
    "redact",
    "resolve_hwaccel",
    "source_kind",
]
