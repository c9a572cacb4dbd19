"""SIGHUP: read the config file again and work out what changes while the daemon runs.

Streams are applied live (added ones start, removed ones stop, changed ones restart, the rest are untouched) and
so is ``daemon.log_level``. Every other section (models, target, tracking, store, mqtt, the rest of daemon) is
built once at start: a change there is logged as needing a restart and the running value is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from streamlabel.config import Config, ConfigError, StreamConfig, load

log = logging.getLogger(__name__)

# Sections (and daemon fields) that a reload cannot change: the models, the store and the sink are built at start.
RESTART_SECTIONS = ("target", "models", "tracking", "store", "privacy", "mqtt", "review", "train", "cluster")
LIVE_DAEMON_FIELDS = ("log_level",)


@dataclass
class ReloadPlan:
    """What a reload does: the effective config and the streams to start, stop and restart."""

    config: Config
    added: dict[str, StreamConfig] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, StreamConfig] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", list(self.added)),
                ("removed", self.removed),
                ("restarted", list(self.changed)),
            )
            if names
        ]
        return "; ".join(parts) or "no stream changed"


def _enabled(cfg: Config) -> dict[str, StreamConfig]:
    return {name: s for name, s in cfg.streams.items() if s.enabled}


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Compare the running config with a newly loaded one; the plan's config keeps what cannot change live."""
    needs_restart = [name for name in RESTART_SECTIONS if getattr(old, name) != getattr(new, name)]
    old_daemon = old.daemon.model_dump()
    new_daemon = new.daemon.model_dump()
    needs_restart += [
        f"daemon.{key}" for key in old_daemon if key not in LIVE_DAEMON_FIELDS and old_daemon[key] != new_daemon[key]
    ]
    daemon = old.daemon.model_copy(update={k: getattr(new.daemon, k) for k in LIVE_DAEMON_FIELDS})
    effective = old.model_copy(update={"streams": new.streams, "daemon": daemon})
    before, after = _enabled(old), _enabled(new)
    plan = ReloadPlan(effective, needs_restart=needs_restart)
    for name, s in after.items():
        if name not in before:
            plan.added[name] = s
        elif before[name] != s:
            plan.changed[name] = s
        else:
            plan.unchanged.append(name)
    plan.removed = [name for name in before if name not in after]
    return plan


def load_for_reload(
    path: Path, running: Config, extra_streams: dict[str, StreamConfig] | None = None
) -> ReloadPlan | None:
    """Load ``path`` and plan the reload; on a bad file log every problem (key and line) and return None.

    ``extra_streams`` (given on the command line) are added to the file's streams, as at start.
    """
    try:
        new = load(path)
    except ConfigError as err:
        log.error("reload rejected, the running config stays: %s has %d problem(s)", err.source, len(err.issues))
        for issue in err.issues:
            log.error("reload rejected: %s: %s", err.source, issue)
        return None
    if extra_streams:
        new = new.model_copy(update={"streams": {**new.streams, **extra_streams}})
    plan = plan_reload(running, new)
    if plan.needs_restart:
        log.warning(
            "reload: %s changed; these apply only after a restart (systemctl restart streamlabel), the running "
            "values stay",
            ", ".join(plan.needs_restart),
        )
    return plan
