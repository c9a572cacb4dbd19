"""PNG plots of a dataset report (``store.report.build_report``), drawn with matplotlib's Agg renderer.

``Figure`` objects are used without ``pyplot``: no global backend or figure state, no display, thread-safe.

One figure per question, each with a title, labelled axes and units: what each stream holds, how it grew per
day, day against night, how many frames are distinct, how big the labels are, how long the queues wait, and how
many labels each track gave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

log = logging.getLogger(__name__)

SPLIT_COLOURS = {"dataset": "tab:green", "review": "tab:orange", "pending": "tab:blue", "rejected": "tab:red"}
DPI = 110


def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """Write every plot of ``report`` into ``out`` (created); returns the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Callable[[Axes, dict[str, Any]], None]] = {
        "frames_per_stream": _frames_per_stream,
        "frames_per_day": _frames_per_day,
        "day_night": _day_night,
        "duplicates": _duplicates,
        "label_sizes": _label_sizes,
        "queue_ages": _queue_ages,
        "labels_per_track": _labels_per_track,
    }
    paths = []
    for name, draw in plots.items():
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # every y axis counts things
        draw(ax, report)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def _empty(ax: Axes, title: str, what: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, f"no {what} in this store", ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _frames_per_stream(ax: Axes, report: dict[str, Any]) -> None:
    title = "Stored frames per stream, by where their main copy is"
    streams = report["streams"]
    if not streams:
        return _empty(ax, title, "frames")
    names = list(streams)
    bottom = np.zeros(len(names))
    for split, colour in SPLIT_COLOURS.items():
        values = np.array([streams[s]["frames"].get(split, 0) for s in names], float)
        ax.bar(names, values, bottom=bottom, color=colour, label=split)
        bottom += values
    distinct = [streams[s].get("distinct_frames", 0) for s in names]
    ax.scatter(names, distinct, marker="D", color="black", zorder=3, label="distinct dataset frames")
    ax.set(title=title, xlabel="stream", ylabel="frames")
    ax.legend(fontsize=8)


def _frames_per_day(ax: Axes, report: dict[str, Any]) -> None:
    title = "Dataset frames and accepted labels per UTC day"
    days = report["days"]
    if not days:
        return _empty(ax, title, "frames")
    all_days = sorted({d["day"] for d in days})
    for stream in sorted({d["stream"] for d in days}):
        rows = {d["day"]: d for d in days if d["stream"] == stream}
        frames = [rows.get(day, {}).get("frames", {}).get("dataset", 0) for day in all_days]
        labels = [rows.get(day, {}).get("labels", {}).get("accepted", 0) for day in all_days]
        (line,) = ax.plot(all_days, frames, marker="o", label=f"{stream}: frames")
        ax.plot(all_days, labels, marker="x", linestyle="--", color=line.get_color(), label=f"{stream}: labels")
    ax.set(title=title, xlabel="day (UTC)", ylabel="count per day")
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize=8)


def _day_night(ax: Axes, report: dict[str, Any]) -> None:
    title = "Dataset images by light: day (colour) and night (infrared), analysed images"
    data = report["day_night"]
    if not data:
        return _empty(ax, title, "dataset images")
    names, x = list(data), np.arange(len(data))
    ax.bar(x - 0.2, [data[s].get("day", 0) for s in names], 0.4, color="gold", label="day (colour)")
    ax.bar(x + 0.2, [data[s].get("night", 0) for s in names], 0.4, color="slategray", label="night (infrared)")
    ax.set_xticks(x, names)
    ax.set(title=title, xlabel="stream", ylabel="images")
    ax.legend(fontsize=8)


def _duplicates(ax: Axes, report: dict[str, Any]) -> None:
    dup = report["duplicates"]
    title = f"Distinct dataset frames (near-duplicates: dHash within {dup['max_bits']} of 64 bits)"
    data = dup["streams"]
    if not data:
        return _empty(ax, title, "dataset images")
    names, x = list(data), np.arange(len(data))
    ax.bar(x - 0.2, [data[s]["analysed"] for s in names], 0.4, color="lightsteelblue", label="analysed images")
    ax.bar(x + 0.2, [data[s]["distinct"] for s in names], 0.4, color="navy", label="distinct (clusters)")
    ax.set_xticks(x, names)
    ax.set(title=title, xlabel="stream", ylabel="images")
    ax.legend(fontsize=8)


def _label_sizes(ax: Axes, report: dict[str, Any]) -> None:
    title = "Size of accepted labels (polygon area)"
    hist = report["label_sizes"]["histogram"]
    if not hist["counts"]:
        return _empty(ax, title, "accepted labels")
    edges = np.array(hist["edges"])
    ax.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color="tab:purple", edgecolor="white")
    scale = "log scale" if hist["log"] else "linear"
    if hist["log"]:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set(title=title, xlabel=f"part area (pixels², {scale})", ylabel="labels")


def _queue_ages(ax: Axes, report: dict[str, Any]) -> None:
    title = "How long frames have waited in the review and pending queues"
    queues = report["queues"]
    ages = {q: queues[q]["ages_days"] for q in ("review", "pending") if queues[q]["ages_days"]}
    if not ages:
        return _empty(ax, title, "waiting frames")
    top = max(max(v) for v in ages.values())
    bins = np.linspace(0, max(top, 1.0), 21)
    for queue, values in ages.items():
        label = f"{queue} ({len(values)} frame{'s' if len(values) != 1 else ''})"
        ax.hist(values, bins=bins, alpha=0.6, color=SPLIT_COLOURS[queue], label=label)
    ax.set(title=title, xlabel="age since stored (days)", ylabel="frames")
    ax.legend(fontsize=8)


def _labels_per_track(ax: Axes, report: dict[str, Any]) -> None:
    title = "Accepted labels per part track"
    tracks = report["tracks"]
    if not tracks:
        return _empty(ax, title, "tracked labels")
    top = max(max(t["counts"]) for t in tracks.values())
    bins = np.arange(0.5, top + 1.5) if top <= 40 else np.linspace(0.5, top + 0.5, 41)
    for stream, figures in tracks.items():
        ax.hist(figures["counts"], bins=bins, alpha=0.6, label=f"{stream} ({figures['tracks']} tracks)")
    ax.set(title=title, xlabel="accepted labels of one track", ylabel="tracks")
    ax.legend(fontsize=8)
