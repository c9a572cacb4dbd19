"""The validator, measured: figures of automatic acceptance computed from audit decisions (docs/review.md).

From the parts of done audit frames (``audit.Audits.outcomes``): precision and recall of automatic acceptance with
Wilson score intervals, the dataset's precision (people's acceptances count as right, the pipeline's as right at
the measured precision), a reliability table (confidence bins against the share people accepted), and the lowest
confidence threshold whose acceptances would have met a target precision. Decisions on ordinary review items are
summarised apart: the queue only holds what the pipeline was unsure of, a biased sample. Parts only the student
found (``verdict_source = 'student'``, docs/student.md) carry no verdict: one a person accepts is a part the pipeline
missed (it counts against recall, like a part a person drew), one a person rejects says nothing of the validator.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from streamlabel.frames import STUDENT_SOURCE, LabelStatus
from streamlabel.store.audit import Audits

Z_95 = 1.959964  # two-sided 95 % normal quantile
RELIABILITY_BINS = 10
PLOT_FILE = "reliability.png"
MISSED = "missed"  # the pipeline status of a part it never offered (a person's add, a student find people accept)


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, trials: int) -> dict[str, Any]:
    """A proportion with its counts and 95 % Wilson interval (value and interval None without trials)."""
    return {
        "value": successes / trials if trials else None,
        "successes": successes,
        "trials": trials,
        "interval": wilson(successes, trials),
    }


def acceptance(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of automatic acceptance (pipeline status accepted) against people's decisions."""
    auto = [p for p in parts if p["pipeline"] == LabelStatus.ACCEPTED]
    right = sum(p["truth"] for p in auto)
    return {
        "parts": len(parts),
        "precision": proportion(right, len(auto)),
        "recall": proportion(right, sum(p["truth"] for p in parts)),
    }


def dataset_precision(precision: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """The share of the store's accepted labels that are right: people's count as right, the pipeline's at
    ``precision`` (its interval carried through)."""
    total = counts["by_people"] + counts["by_pipeline"]
    if not total or precision["value"] is None:
        return {"value": None, "interval": None, **counts}

    def share(p: float) -> float:
        return (counts["by_people"] + p * counts["by_pipeline"]) / total

    low, high = precision["interval"]
    return {"value": share(precision["value"]), "interval": (share(low), share(high)), **counts}


def reliability(parts: list[dict[str, Any]], bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """Per confidence bin: parts, their mean confidence and the share people accepted (with its interval)."""
    rows = []
    for k in range(bins):
        low, high = k / bins, (k + 1) / bins
        inside = [p for p in parts if p["confidence"] is not None and low <= p["confidence"] < high + (k == bins - 1)]
        accepted = sum(p["truth"] for p in inside)
        mean = sum(p["confidence"] for p in inside) / len(inside) if inside else None
        rows.append({"low": low, "high": high, "mean_confidence": mean, "accepted": proportion(accepted, len(inside))})
    return rows


def threshold_for(parts: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The lowest confidence threshold at which accepting every part at or above it would have met ``target``
    precision on these parts, with that precision (and interval) and the recall it keeps; None when none would."""
    judged = sorted((p for p in parts if p["confidence"] is not None), key=lambda p: p["confidence"])
    positives = sum(p["truth"] for p in judged)
    for i, part in enumerate(judged):
        if i and judged[i - 1]["confidence"] == part["confidence"]:
            continue  # a threshold between tied confidences is not possible
        above = judged[i:]
        right = sum(p["truth"] for p in above)
        if right / len(above) >= target:
            return {
                "target": target,
                "threshold": part["confidence"],
                "precision": proportion(right, len(above)),
                "recall": proportion(right, positives),
            }
    return {"target": target, "threshold": None, "precision": None, "recall": None}


def student_finds(audits: Audits) -> set[int]:
    """The ids of decided parts that only the student found (few: read through the decisions)."""
    rows = audits.manifest.query(
        "SELECT DISTINCT r.label_id FROM reviews r JOIN labels l ON l.id = r.label_id WHERE l.verdict_source = ?",
        (STUDENT_SOURCE,),
    )
    return {int(r[0]) for r in rows}


def split_finds(parts: list[dict[str, Any]], finds: set[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``parts`` as the validator's figures see them, and the student's finds among them. A find people accepted
    stays, as a part the pipeline missed; one they rejected is left out (no decision on a validator verdict)."""
    kept, found = [], []
    for part in parts:
        if part["label_id"] not in finds:
            kept.append(part)
            continue
        found.append(part)
        if part["truth"]:
            kept.append(part | {"pipeline": MISSED})
    return kept, found


def calibration(audits: Audits, target_precision: float = 0.99) -> dict[str, Any]:
    """The calibration report of one store: audit figures, ordinary review decisions apart, and the student's
    finds people decided on."""
    outcomes, finds = audits.outcomes(), student_finds(audits)
    audit_parts, audit_finds = split_finds(outcomes["audit"], finds)
    review, review_finds = split_finds(outcomes["review"], finds)
    review = [p for p in review if p["label_id"] not in finds]  # not a review of a verdict, nor a biased one
    outcomes = {"audit": audit_parts, "review": review}
    audit = acceptance(outcomes["audit"])
    decided = audit_finds + review_finds
    return {
        "audit_fraction": audits.fraction,
        "strata": audits.progress(),
        "audit": audit
        | {
            "dataset_precision": dataset_precision(audit["precision"], audits.dataset_counts()),
            "reliability": reliability(outcomes["audit"]),
            "threshold": threshold_for(outcomes["audit"], target_precision),
        },
        "review_items": {
            "note": "decisions on ordinary review items: a biased sample (only what the pipeline was unsure of)",
            "parts": len(review),
            "accepted_by_people": proportion(sum(p["truth"] for p in review), len(review)),
            "reliability": reliability(review),
        },
        "student_finds": {
            "note": "parts only the student found: accepted ones are parts the pipeline missed",
            "decided": len(decided),
            "accepted_by_people": proportion(sum(p["truth"] for p in decided), len(decided)),
            "in_audit": len(audit_finds),
        },
    }


def plot_reliability(report: dict[str, Any], out: Path) -> Path:
    """Write the reliability diagram (audit parts, and review items dashed) as ``out/reliability.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, label="perfectly calibrated")
    for rows, style, name in (
        (report["audit"]["reliability"], "o-", "audit (uncensored)"),
        (report["review_items"]["reliability"], "s--", "review items (biased)"),
    ):
        pts = [r for r in rows if r["accepted"]["trials"]]
        if not pts:
            continue
        xs = [r["mean_confidence"] for r in pts]
        ys = [r["accepted"]["value"] for r in pts]
        err = [  # at 0 % or 100 % the Wilson bound equals the value up to rounding: never a negative bar
            [max(r["accepted"]["value"] - r["accepted"]["interval"][0], 0.0) for r in pts],
            [max(r["accepted"]["interval"][1] - r["accepted"]["value"], 0.0) for r in pts],
        ]
        ax.errorbar(
            xs, ys, yerr=err, fmt=style, capsize=3, label=f"{name}, {sum(r['accepted']['trials'] for r in pts)} parts"
        )
    threshold = report["audit"]["threshold"]
    if threshold["threshold"] is not None:
        ax.axvline(
            threshold["threshold"], color="tab:red", ls=":", label=f"threshold for {threshold['target']:.0%} precision"
        )
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="validator confidence", ylabel="share people accepted")
    ax.set_title("Reliability of the validator (95 % Wilson intervals)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / PLOT_FILE
    fig.savefig(path)
    plt.close(fig)
    return path
