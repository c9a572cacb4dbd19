"""The service side: the runner (streams → labeler → store), supervision, reload, sd_notify, metrics and status.

``daemon.service.Daemon`` is ``streamlabel run``; it is imported from there (it pulls in the event sinks).
"""

from streamlabel.daemon.runner import Runner, RunStats

__all__ = ["RunStats", "Runner"]
