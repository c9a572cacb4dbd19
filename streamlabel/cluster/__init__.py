"""The Ray engine (``cluster:`` in the config): reader and labeler actors, placement, failure handling.

``ClusterRunner`` (and everything that imports Ray) loads on first use, so ``streamlabel status`` can print a
cluster's state (``cluster.status``) on a machine without Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClusterRunner", "LabelerActor", "ReaderActor", "build_stages", "cluster_state"]


def __getattr__(name: str) -> Any:
    if name == "ClusterRunner":
        from streamlabel.cluster.driver import ClusterRunner

        return ClusterRunner
    if name in ("LabelerActor", "ReaderActor", "build_stages"):
        from streamlabel.cluster import actors

        return getattr(actors, name)
    if name == "cluster_state":
        from streamlabel.cluster.metrics import cluster_state

        return cluster_state
    raise AttributeError(f"module 'streamlabel.cluster' has no attribute {name!r}")
