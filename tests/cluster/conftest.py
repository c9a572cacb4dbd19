"""A real local Ray cluster shared by the module's tests: a head and a worker node, both on 127.0.0.1."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray resolves 127.0.0.1 in an address to the machine's network address unless its "no multi-machine cluster"
# switch is set; with it every node and the driver stay on the loopback interface (inherited by the node processes).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

OBJECT_STORE_BYTES = 100 * 1024 * 1024  # per node; Ray's default (30% of RAM) is far more than tests need
NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE_BYTES}
# A killed node is declared dead after about 3 missed checks of 0.5 s, not Ray's default ~30 s.
SYSTEM = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_timeout_ms": 500}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    """Head (1 CPU, resource ``cam_head``) and one worker (1 CPU, ``cam_worker``); the test process is the driver.

    One labeler per node fits (``labeler_num_cpus: 1``); readers ask for no CPU, only their camera resource.
    """
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={
            **NODE,
            "num_cpus": 1,
            "resources": {"cam_head": 1},
            "include_dashboard": False,
            "_system_config": SYSTEM,
        },
    )
    worker = cluster.add_node(**NODE, num_cpus=1, resources={"cam_worker": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    cluster.worker = worker  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert_no_ray_process_left()


def assert_no_ray_process_left(deadline_s: float = 20.0) -> None:
    """Every Ray process this test process started (GCS, raylets, workers) has ended."""
    import psutil

    end = time.monotonic() + deadline_s
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if _is_ray(p)]
        if not left:
            return
        assert time.monotonic() < end, f"Ray processes left behind: {[p.name() for p in left]}"
        time.sleep(0.2)


def _is_ray(process: object) -> bool:
    try:
        text = " ".join(process.cmdline()).lower()  # type: ignore[attr-defined]
    except Exception:  # it ended meanwhile
        return False
    return "ray" in text
