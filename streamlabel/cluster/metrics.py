"""Per-node and per-actor figures of the cluster for ``/metrics``, read from the driver's books when scraped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def cluster_state(runner: Any) -> dict[str, Any]:
    """Plain data for ``streamlabel status``: labelers, readers and actors per node."""
    nodes: Counter[str] = Counter()
    for lab in runner.labelers:
        if lab.alive:
            nodes[lab.node] += 1
    for slot in runner.supervisor.active():
        if slot.reader is not None and slot.node:
            nodes[slot.node] += 1
    return {
        "labelers": {str(lab.index): lab.state() for lab in runner.labelers},
        "actors_per_node": dict(nodes),
    }


class ClusterCollector(Collector):
    """Gauges and counters of streams, labelers and nodes of one ``ClusterRunner``."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def collect(self) -> Iterator[Metric]:
        yield from self._streams()
        yield from self._labelers()
        nodes = GaugeMetricFamily("streamlabel_cluster_node_actors", "Live actors per Ray node.", labels=["node"])
        for node, n in cluster_state(self._runner)["actors_per_node"].items():
            nodes.add_metric([node], n)
        yield nodes

    def _streams(self) -> Iterator[Metric]:
        f = {
            "in_flight": GaugeMetricFamily(
                "streamlabel_cluster_stream_frames_in_flight",
                "Frames taken from the reader, not stored yet.",
                labels=["stream"],
            ),
            "queued": GaugeMetricFamily(
                "streamlabel_cluster_stream_queue_depth", "Frames queued in the reader actor.", labels=["stream"]
            ),
            "restarts": CounterMetricFamily(
                "streamlabel_cluster_stream_restarts", "Restarts after a reader or labeler died.", labels=["stream"]
            ),
            "missed": CounterMetricFamily(
                "streamlabel_cluster_stream_missed_frames",
                "Camera frames lost in flight when an actor died.",
                labels=["stream"],
            ),
        }
        for slot in self._runner.supervisor.slots():
            for key, family in f.items():
                family.add_metric([slot.name], getattr(slot, key))
        yield from f.values()

    def _labelers(self) -> Iterator[Metric]:
        labels = ["labeler", "node"]
        f = {
            "calls_in_flight": GaugeMetricFamily(
                "streamlabel_cluster_labeler_queue_depth", "Label calls queued at the labeler actor.", labels=labels
            ),
            "frames_in_flight": GaugeMetricFamily(
                "streamlabel_cluster_labeler_frames_in_flight",
                "Frames sent to the labeler, not answered.",
                labels=labels,
            ),
            "alive": GaugeMetricFamily(
                "streamlabel_cluster_labeler_alive", "1 while the labeler answers.", labels=labels
            ),
            "restarts": CounterMetricFamily(
                "streamlabel_cluster_labeler_restarts", "Times the labeler was replaced.", labels=labels
            ),
        }
        for lab in self._runner.labelers:
            state = lab.state()
            for key, family in f.items():
                family.add_metric([str(lab.index), lab.node], float(state[key]))
        yield from f.values()
