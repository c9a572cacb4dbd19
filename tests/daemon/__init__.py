"""Tests of the daemon as a service: supervision, reload, sd_notify, metrics, logs, the unit file."""
