"""Benchmarks behind ``streamlabel bench``: they print figures measured side by side in one run."""
