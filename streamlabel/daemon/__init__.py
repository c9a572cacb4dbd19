"""The service side: the runner that wires streams, labeler and store, and signal handling."""

from streamlabel.daemon.runner import Runner, RunStats

__all__ = ["RunStats", "Runner"]
