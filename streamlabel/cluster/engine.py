"""Ray itself: joining (or starting) the cluster, creating the actors where the config places them, killing them.

Everything that names a Ray API lives here and in the driver, so the actors stay plain classes.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import ray

from streamlabel.cluster.actors import LabelerActor, ReaderActor, StagesFactory, build_stages
from streamlabel.config import Config, StreamConfig
from streamlabel.config.cluster import ClusterConfig

log = logging.getLogger(__name__)


def connect(cluster: ClusterConfig) -> bool:
    """Join the cluster of ``cluster.address`` (or start a local one); True when this call started Ray (the
    caller then shuts it down), False when Ray was already initialized in this process (tests, a Ray Job)."""
    if ray.is_initialized():
        return False
    log.info(
        "%s Ray cluster (address %s)",
        "starting a local" if cluster.address == "local" else "joining the",
        cluster.address,
    )
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=True, configure_logging=False)
    return True


def live_resources() -> dict[str, float]:
    """Per resource name, the largest amount one live node offers."""
    out: dict[str, float] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            for name, amount in node.get("Resources", {}).items():
                out[name] = max(out.get(name, 0.0), float(amount))
    return out


def placeable(stream: str, resources: dict[str, float]) -> dict[str, float]:
    """``resources`` when some live node offers them all; else {} (the reader goes anywhere) with a warning."""
    offered = live_resources()
    missing = {k: v for k, v in resources.items() if offered.get(k, 0.0) < v}
    if missing:
        log.warning(
            "stream %s: no live node offers %s (cluster.streams.%s.resources); its reader runs on any node",
            stream,
            missing,
            stream,
        )
        return {}
    return resources


def start_reader(
    name: str,
    cfg: StreamConfig,
    resources: dict[str, float],
    cluster: ClusterConfig,
    resume_after: int,
    clock_from: tuple[int, float, datetime] | None = None,
) -> Any:
    """A reader actor for stream ``name`` on a node with ``resources`` (when one is alive)."""
    actor = ray.remote(ReaderActor).options(
        num_cpus=cluster.reader_num_cpus,
        resources=placeable(name, resources),
        max_concurrency=2,  # ``stop`` while a ``take`` waits
        max_restarts=0,  # the driver restarts streams itself: it must know where the new reader resumes
    )
    return actor.remote(name, cfg, resume_after, cluster.transport, clock_from)


def start_labeler(cfg: Config, stages_factory: StagesFactory | None = None) -> Any:
    """A labeler actor with the GPUs and CPUs of ``cluster.labeler_num_*``; it loads the models when it starts."""
    cluster = cfg.cluster
    assert cluster is not None
    actor = ray.remote(LabelerActor).options(
        num_cpus=cluster.labeler_num_cpus, num_gpus=cluster.labeler_num_gpus, max_restarts=0
    )
    return actor.remote(cfg, stages_factory or build_stages)


def kill(handle: Any) -> None:
    """End an actor now (it may be dead already)."""
    if handle is None:
        return
    try:
        ray.kill(handle, no_restart=True)
    except Exception as exc:  # already gone, or its node is
        log.debug("kill: %s", exc)
