"""The service log holds our lines: no library progress bars, no Ultralytics INFO chatter, each warning once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import warnings
    from streamlabel.daemon.logs import setup_service_logging
    setup_service_logging("INFO")
    from ultralytics.utils import LOGGER
    LOGGER.info("ultralytics-info-line")
    LOGGER.warning("ultralytics-warning-line")
    warnings.warn("`torch.jit.script` is deprecated. Please switch to `torch.compile`.", FutureWarning)
    from transformers.utils import logging as hf_logging
    print("progress bars:", hf_logging.is_progress_bar_enabled())
    """
)


def test_service_logging_quiets_the_libraries() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "progress bars: False" in run.stdout
    assert "ultralytics-info-line" not in run.stdout + run.stderr
    assert (run.stdout + run.stderr).count("ultralytics-warning-line") == 1
    assert "WARNING ultralytics: ultralytics-warning-line" in run.stderr  # through our one-line formatter
    assert "torch.jit" not in run.stderr
