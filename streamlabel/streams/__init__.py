"""Ingest: PyAV sources (files, RTSP, HTTP, V4L2), timestamp sampling, reader threads with reconnect."""

from streamlabel.streams.reader import QueueItem, StreamEnd, StreamReader, StreamStatus
from streamlabel.streams.sampling import Sampler
from streamlabel.streams.source import SourceError, is_live, iter_sampled, open_container, redact

__all__ = [
    "QueueItem",
    "Sampler",
    "SourceError",
    "StreamEnd",
    "StreamReader",
    "StreamStatus",
    "is_live",
    "iter_sampled",
    "open_container",
    "redact",
]
