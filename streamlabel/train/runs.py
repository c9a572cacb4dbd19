"""Where training runs live and how a student is named: ``<store>/models/<run_id>/`` (issue 16).

A run folder holds ``weights/best.pt`` (and ``last.pt``), ``metrics.json``, ``snapshot.json`` (the frozen dataset:
frame ids and label file hashes), ``args.yaml`` (the training arguments) and the Ultralytics lists it trained from.
A student is named by its run id (``models.student: 20261202T004500Z-3f2a``) or by a path to a ``.pt`` / ``.yaml``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from streamlabel.store.trained_models import FINISHED, read_models

MODELS_DIR = "models"
MANIFEST_NAME = "manifest.sqlite"
MODEL_SUFFIXES = (".pt", ".yaml", ".yml")


class UnknownStudentError(ValueError):
    """A student reference that names no finished run and no model file."""


def new_run_id(now: datetime | None = None) -> str:
    """A run id: the UTC time ``YYYYmmddTHHMMSSZ`` and a 4-hex-digit suffix (two runs in one second differ)."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def run_dir(store_root: Path, run_id: str) -> Path:
    """The folder of one run."""
    return Path(store_root) / MODELS_DIR / run_id


def best_weights(store_root: Path, run_id: str) -> Path:
    """The weights a run's student is loaded from (``weights/best.pt``)."""
    return run_dir(store_root, run_id) / "weights" / "best.pt"


def resolve_student(store_root: Path, ref: str) -> Path:
    """The weights file of ``ref``: a run id of this store, or a path to a ``.pt`` / ``.yaml`` (returned as given).

    A ``.pt`` must exist (Ultralytics would try to download a missing one); a ``.yaml`` is an architecture that
    Ultralytics builds (random init) and is returned unchecked. A run id resolves to its ``weights/best.pt``
    when the folder has it; otherwise ``UnknownStudentError`` names where it looked and what to do.
    """
    ref = str(ref).strip()
    if not ref:
        raise UnknownStudentError("student reference is empty: give a run id from `streamlabel train` or a .pt path")
    path = Path(ref).expanduser()
    if path.suffix.lower() in MODEL_SUFFIXES:
        if path.suffix.lower() == ".pt" and not path.is_file():
            raise UnknownStudentError(
                f"student {ref!r}: no such weights file (looked at {path.resolve()}); nothing is downloaded: "
                "give an existing .pt, a .yaml, or a run id under "
                f"{Path(store_root) / MODELS_DIR}"
            )
        return path
    weights = best_weights(store_root, ref)
    if weights.is_file():
        return weights
    raise UnknownStudentError(_unknown_run_message(Path(store_root), ref, weights))


def _unknown_run_message(store_root: Path, ref: str, weights: Path) -> str:
    rows = {r["run_id"]: r for r in read_models(store_root / MANIFEST_NAME)}
    row = rows.get(ref)
    if row is not None and row["status"] != FINISHED:
        state = f"its run is {row['status']}" + (f" ({row['error']})" if row.get("error") else "")
        return f"student {ref!r}: {state}, so {weights} does not exist; pick a finished run (`streamlabel evaluate`)"
    known = ", ".join(r for r, v in rows.items() if v["status"] == FINISHED) or "none"
    return (
        f"student {ref!r}: not a run of this store (no {weights}, no row in the models table of "
        f"{store_root / MANIFEST_NAME}); finished runs: {known}. Give one of them, a path to a .pt, "
        "or train one with `streamlabel train`"
    )


def current_student(store_root: Path) -> str | None:
    """The run id of the promoted student of the store (``models.promoted``), or None when none was promoted."""
    for row in read_models(Path(store_root) / MANIFEST_NAME):
        if row["promoted"]:
            return str(row["run_id"])
    return None
