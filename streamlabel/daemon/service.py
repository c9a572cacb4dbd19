"""Daemon: the runner as a service: signals, reload, sd_notify, the event sink, metrics and a clean drain.

Threads: the labeler loop runs in its own thread; the main thread handles signals and the periodic work (watchdog
pings, status lines, stats events); readers, the perceive worker, clips, housekeeping, the sink, the store sizer and
the HTTP endpoint have their own. The watchdog ping goes out while the labeling threads' heartbeats are on time,
a bounded validator wait included. When every stream is a file, the service ends once they are read and the
pending work is settled. The store is closed only after every thread that writes to it has ended.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamlabel import __version__
from streamlabel.config import Config, StreamConfig
from streamlabel.daemon.heartbeat import most_late
from streamlabel.daemon.housekeeping import Housekeeper
from streamlabel.daemon.metrics import DaemonMetrics, MetricsServer, StoreSizer
from streamlabel.daemon.notify import Notifier
from streamlabel.daemon.reload import load_for_reload
from streamlabel.daemon.runner import Runner, RunStats
from streamlabel.daemon.state import snapshot, stage_times, stats_payload
from streamlabel.events import open_sink
from streamlabel.pipeline import Stages
from streamlabel.review import review_server
from streamlabel.store.clips import count_pending
from streamlabel.store.dataset import DatasetStore
from streamlabel.streams import StreamStatus, is_live

log = logging.getLogger(__name__)

# Seconds between STATUS= lines to systemd.
STATUS_INTERVAL_S = 5.0
# Longest sleep of the main loop (seconds): signals wake it at once, periodic work needs a pulse.
MAIN_TICK_S = 1.0
# Extra seconds past stop_timeout_s for the batches in flight (one being judged, the next one perceived with
# models.overlap) before a labeler stuck in a batch is given up on (exit 1); also the sink's last delivery.
STOP_GRACE_S = 15.0
# Stats interval when there is no mqtt section (events go to events.jsonl), seconds.
DEFAULT_STATS_INTERVAL_S = 60.0


class Daemon:
    """One running service: builds the sink, metrics and runner around loaded stages and an open store.

    Args:
        cfg: the loaded config.
        config_path: the file SIGHUP reloads (None: reload keeps the config).
        stages: the built stages.
        store: the open store; the daemon closes it at the end of ``run``.
        extra_streams: streams given on the command line; kept across reloads.
        notifier: sd_notify sender (from the environment when None).
    """

    def __init__(
        self,
        cfg: Config,
        config_path: Path | None,
        stages: Stages,
        store: DatasetStore,
        extra_streams: dict[str, StreamConfig] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config_path = config_path
        self.store = store
        self.extra_streams = extra_streams or {}
        self.notifier = notifier or Notifier()
        self.sink = open_sink(cfg, store.manifest)
        self.metrics = DaemonMetrics()
        runner_cls: type[Runner] = Runner
        if cfg.cluster is not None:  # the daemon is the Ray driver (docs/cluster.md); Ray is imported only then
            from streamlabel.cluster import ClusterRunner as runner_cls
        self.runner = runner_cls(cfg, stages, store, sink=self.sink, metrics=self.metrics, service=True)
        self.runner.finite = only_files(cfg)
        self.sizer = StoreSizer(store.root)
        self.housekeeper = Housekeeper(cfg, store, stages.validator, on_change=self.sink.wake, config_path=config_path)
        self.metrics.bind(self._metric_state)
        self.server: MetricsServer | None = None
        if cfg.daemon.metrics_address:
            self.server = MetricsServer(cfg.daemon.metrics_address, self.metrics, self.health, self.state)
        self.review = review_server(cfg, store, self.sink, stages.segmenter)  # None when review.address is null
        self.needs_restart: list[str] = []
        self.reloads = {"applied": 0, "rejected": 0}
        self.started = time.time()
        # Self-pipe: a signal handler must not take a lock the interrupted main thread may hold (Event.set does).
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop_reason: str | None = None
        self._reload_asked = False
        self._error: BaseException | None = None
        self._stopped_streams: list[str] = []
        self._late_logged = False
        self._labeler = threading.Thread(target=self._label_loop, name="labeler", daemon=True)

    @property
    def cfg(self) -> Config:
        return self.runner.cfg

    # --- signals --------------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        """SIGTERM and SIGINT drain and stop; SIGHUP reloads the config file; SIGUSR1 logs every thread's stack."""
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        signal.signal(signal.SIGTERM, lambda n, _f: self.request_stop(signal.Signals(n).name))
        signal.signal(signal.SIGINT, lambda n, _f: self.request_stop(signal.Signals(n).name))
        signal.signal(signal.SIGHUP, lambda _n, _f: self.request_reload())

    def request_stop(self, reason: str) -> None:
        self._stop_reason = self._stop_reason or reason
        self._poke()

    def request_reload(self) -> None:
        self._reload_asked = True
        self._poke()

    def _poke(self) -> None:
        """Wake the main loop; safe from a signal handler and from any thread."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _sleep(self, timeout_s: float) -> None:
        """Wait for a poke or ``timeout_s``, then swallow the pokes."""
        select.select([self._wake_r], [], [], timeout_s)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    # --- run ------------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until a stop is asked for; returns the exit status (0 after a clean drain)."""
        self.sink.start()
        self.sizer.start()
        self.housekeeper.start()
        if self.server is not None:
            self.server.start()
        if self.review is not None:
            self.review.start()
        self.runner.start()
        self._labeler.start()
        self.notifier.ready(self.status_line())
        log.info(
            "ready: %d stream(s), store %s, metrics %s%s",
            len(self.runner.supervisor.slots()),
            self.store.root,
            self.server.bound if self.server else "off",
            "; every stream is a file: ends when they are read" if self.runner.finite else "",
        )
        clean = self._serve()
        return self._finish(clean)

    def _label_loop(self) -> None:
        try:
            self.runner.run_until_done()
        except BaseException as exc:  # the service cannot label any more: stop and exit non-zero
            self._error = exc
            log.critical("labeler failed, stopping: %s: %s", type(exc).__name__, exc, exc_info=True)
        finally:
            self._poke()

    def _serve(self) -> bool:
        """The main loop; False when the labeler failed or did not finish its drain in time."""
        stopping_since: float | None = None
        last_status = last_stats = last_ping = time.monotonic()
        while self._labeler.is_alive():
            self._sleep(self._tick_s())
            if stopping_since is not None:  # its last poke comes just before it ends: not a whole tick past it
                self._labeler.join(0.2)
            now = time.monotonic()
            if (self._stop_reason or self._error) and stopping_since is None:
                stopping_since = now
                log.info(
                    "%s: draining frames in flight (up to %.0f s)", self._stop_reason, self.cfg.daemon.stop_timeout_s
                )
                self.notifier.stopping()
                self._stopped_streams = [s.name for s in self.runner.supervisor.active()]
                self.housekeeper.halt()  # after its current frame: it must end before the store is closed
                self.runner.stop()
            if self._reload_asked and stopping_since is None:
                self._reload_asked = False
                self._guarded("reload", self.reload)
            if self._watchdog_due(now, last_ping):
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= STATUS_INTERVAL_S:
                self.notifier.status(self.status_line())
                last_status = now
            if now - last_stats >= self._stats_interval_s():
                self._guarded("stats event", self._send_stats)
                last_stats = now
            if stopping_since is not None and now - stopping_since > self.cfg.daemon.stop_timeout_s + STOP_GRACE_S:
                self._labeler.join(MAIN_TICK_S)  # it pokes the loop just before it ends: not a hang
                if not self._labeler.is_alive():
                    break
                log.error("labeler still busy %.0f s after the stop: giving up on its batch", now - stopping_since)
                return False
        return self._error is None

    @staticmethod
    def _guarded(what: str, fn: Callable[[], None]) -> None:
        """Periodic work that fails is logged; it must not take the labeling down."""
        try:
            fn()
        except Exception:
            log.exception("%s failed", what)

    def _finish(self, clean: bool) -> int:
        stats = self.runner.stats
        finished = clean and not self.runner.stopping  # every file read, no stop asked for
        if not self.runner.stopping:  # the files were read, or the labeler ended on an error
            self.notifier.stopping()
        for name in self._stopped_streams:  # retained states must not say online after the daemon left
            self.sink.stream_status(name, str(StreamStatus.OFFLINE), "daemon stopped")
        # A stop ends by its deadline (daemon.stop_timeout_s after the signal): what the drain left of it goes to
        # the housekeeper and the event sink; undelivered events stay in the outbox for the next start.
        deadline = self.runner.stop_deadline or time.monotonic() + STOP_GRACE_S
        if finished:
            deadline = time.monotonic() + self.cfg.daemon.stop_timeout_s
        idle = self.housekeeper.stop(max(0.5, deadline - time.monotonic()))
        if finished and idle and self.housekeeper.settle():
            self.sink.wake()
        self.sink.stop(max(0.5, deadline - time.monotonic()))
        if self.server is not None:
            self.server.stop()
        if self.review is not None:
            self.review.stop()
        self.sizer.stop()
        self._close_store(idle and self.runner.clips_closed and not self._labeler.is_alive())
        self.notifier.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        log.info(
            "stopped: labeled=%d stored=%d unlabeled=%d (%s)",
            stats.frames,
            sum(stats.stored.values()),
            stats.unlabeled,
            ", ".join(f"{k} {v}" for k, v in sorted(stats.stored.items())) or "nothing stored",
        )
        if finished:
            log.info("finished: every file was read; the dataset is in %s", self.store.root)
        failed = [name for name, error in stats.ended.items() if error]
        return 0 if clean and not (finished and failed) else 1

    def _close_store(self, writers_ended: bool) -> None:
        """Close the store, unless a thread that writes to it is still busy (it would fail on a closed database;
        left open, the process exit ends it and SQLite's journal keeps the store whole)."""
        depth = self._depth()
        if depth:
            log.info("%d event(s) stay in the outbox; they are delivered at the next start", depth)
        if writers_ended:
            self.store.close()
        else:
            log.warning("a thread that writes to the store is still busy: it is left open for the process exit")

    @property
    def stats(self) -> RunStats:
        return self.runner.stats

    # --- periodic work --------------------------------------------------------------------------------------

    def _tick_s(self) -> float:
        wd = self.notifier.watchdog_s if self.cfg.daemon.watchdog else None
        return min(MAIN_TICK_S, wd / 4) if wd else MAIN_TICK_S

    def _watchdog_due(self, now: float, last_ping: float) -> bool:
        """Ping at half the interval, and only while the labeler loop is alive and its threads are on time."""
        wd = self.notifier.watchdog_s
        if not (self.cfg.daemon.watchdog and wd) or now - last_ping < wd / 2:
            return False
        if not self._labeler.is_alive():
            return False
        name, late_s = most_late(list(self.runner.heartbeats.values()), wd)
        if late_s > 0 and not self._late_logged:  # once: the journal says why systemd is about to kill it
            log.error("watchdog: the %s thread is %.0f s past its deadline; no more pings", name, late_s)
        self._late_logged = late_s > 0
        return late_s <= 0

    def _stats_interval_s(self) -> float:
        return self.cfg.mqtt.stats_interval_s if self.cfg.mqtt is not None else DEFAULT_STATS_INTERVAL_S

    def _send_stats(self) -> None:
        self.sink.stats(stats_payload(self.state()))

    def reload(self) -> None:
        """Apply the config file again: streams change live, the rest is logged as needing a restart."""
        self.notifier.reloading()
        if self.config_path is None:
            log.warning("SIGHUP: no config file to reload")
            self.notifier.ready(self.status_line())
            return
        log.info("SIGHUP: reloading %s", self.config_path)
        plan = load_for_reload(self.config_path, self.cfg, self.extra_streams)
        if plan is None:
            self.reloads["rejected"] += 1
        else:
            self.runner.reconfigure(plan.config, plan.added, plan.removed, plan.changed)
            self.runner.finite = only_files(plan.config)
            logging.getLogger().setLevel(plan.config.daemon.log_level)
            self.needs_restart = plan.needs_restart
            self.reloads["applied"] += 1
            log.info("reload applied: %s", plan.summary())
        self.notifier.ready(self.status_line())

    # --- state ----------------------------------------------------------------------------------------------

    def status_line(self) -> str:
        slots = self.runner.supervisor.slots()
        online = sum(s.status == StreamStatus.ONLINE for s in slots)
        st = self.runner.stats
        return f"{online}/{len(slots)} streams online, {st.frames} frames labeled, {sum(st.stored.values())} stored"

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the labeler loop is alive and its threads beat within ``daemon.health_max_age_s`` (plus
        the budget of a validator call they wait on)."""
        age = time.monotonic() - self.runner.tick
        alive = self._labeler.is_alive()
        _, late_s = most_late(list(self.runner.heartbeats.values()), self.cfg.daemon.health_max_age_s)
        ok = alive and self._error is None and late_s <= 0
        return ok, {"labeler_alive": alive, "tick_age_s": round(age, 3), "stopping": self.runner.stopping}

    def _metric_state(self) -> dict[str, Any]:
        return {
            "streams": {s.name: s.state() for s in self.runner.supervisor.slots()},
            "outbox_depth": self._depth(),
            "store_bytes": self.sizer.bytes,
            "labeler_tick_age_seconds": time.monotonic() - self.runner.tick,
            "sink_connected": int(bool(self.sink.connected)),
            "sift": self.runner.sift_counts(),
            **self._clip_state(),
            "privacy_dropped": self._privacy_dropped(),
        }

    def _clip_state(self) -> dict[str, int | None]:
        """Clips waiting in the clip thread's queue and clips a stop left for a later start."""
        try:
            pending: int | None = count_pending(self.store)
        except Exception as exc:  # a closed or locked database must not break a scrape
            log.debug("pending clips unavailable: %s", exc)
            pending = None
        return {"clips_queued": self.runner.clips.queued, "clips_pending": pending}

    def _privacy_dropped(self) -> dict[str, dict[str, int]]:
        """Frames and clips not stored because a person was in them (``privacy.people: drop``), per stream."""
        writer = self.runner.clips.writer
        return {
            "frame": dict(self.store.private_dropped),
            "clip": dict(writer.private_dropped) if writer is not None else {},
        }

    def _depth(self) -> int | None:
        try:
            return int(self.sink.depth())
        except Exception as exc:  # a closed or locked database must not break a scrape
            log.debug("outbox depth unavailable: %s", exc)
            return None

    def state(self) -> dict[str, Any]:
        """Everything ``streamlabel status`` shows, as plain data (the /status endpoint)."""
        st = self.runner.stats
        ok, health = self.health()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "config": str(self.config_path) if self.config_path else None,
            "store": str(self.store.root),
            "healthy": ok,
            **health,
            "frames_labeled": st.frames,
            "frames_stored": sum(st.stored.values()),
            "stored": snapshot(st.stored),
            "labels": snapshot(st.labels),
            "unlabeled": st.unlabeled,
            "streams": {s.name: s.state() for s in self.runner.supervisor.slots()},
            "stages": stage_times(self.runner.labeler.times),
            "sift": self.runner.sift_counts(),
            "outbox_depth": self._depth(),
            "sink_connected": bool(self.sink.connected),
            **self._clip_state(),
            "store_bytes": self.sizer.bytes,
            "reloads": dict(self.reloads),
            "needs_restart": self.needs_restart,
            "cluster": self.runner.cluster_state() if hasattr(self.runner, "cluster_state") else None,
        }


def only_files(cfg: Config) -> bool:
    """Whether every enabled stream is a file read once (no camera, no looped file): the run then has an end."""
    streams = [s for s in cfg.streams.values() if s.enabled]
    return bool(streams) and all(not is_live(s.url) and not s.loop for s in streams)
