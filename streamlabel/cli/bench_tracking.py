"""``streamlabel bench tracking``."""

from __future__ import annotations
