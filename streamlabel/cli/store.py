"""Commands that read the store: export, harvest."""

from __future__ import annotations
