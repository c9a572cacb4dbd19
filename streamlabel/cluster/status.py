"""The cluster's part of ``streamlabel status``: streams on actors and nodes, and the labelers (no Ray import)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_cluster(state: dict[str, Any], console: Console) -> None:
    """Per stream its labeler, node, frames in flight, reader queue, missed frames and restarts; per labeler
    whether it is alive, its node, calls and frames in flight, frames labeled and restarts."""
    streams = Table(title="cluster: streams")
    for col in ("stream", "labeler", "node", "in flight", "queued", "missed", "restarts"):
        streams.add_column(col, justify="left" if col in ("stream", "node") else "right")
    for name, s in sorted(state.get("streams", {}).items()):
        streams.add_row(
            name,
            str(s.get("labeler", "-")),
            str(s.get("node", ""))[:12],
            str(s.get("in_flight", 0)),
            str(s.get("queue_depth", 0)),
            str(s.get("missed", 0)),
            str(s.get("restarts", 0)),
        )
    console.print(streams)
    labelers = Table(title="cluster: labelers")
    for col in ("labeler", "alive", "node", "calls", "frames in flight", "frames", "restarts"):
        labelers.add_column(col, justify="left" if col in ("alive", "node") else "right")
    for index, lab in sorted(state["cluster"].get("labelers", {}).items()):
        labelers.add_row(
            index,
            "[green]yes[/]" if lab.get("alive") else "[red]no[/]",
            str(lab.get("node", ""))[:12],
            str(lab.get("calls_in_flight", 0)),
            str(lab.get("frames_in_flight", 0)),
            str(lab.get("frames", 0)),
            str(lab.get("restarts", 0)),
        )
    console.print(labelers)
    nodes = state["cluster"].get("actors_per_node", {})
    if nodes:
        console.print("actors per node: " + ", ".join(f"{n[:12]} {k}" for n, k in sorted(nodes.items())))
