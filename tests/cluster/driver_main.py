"""TEST FIXTURE: ``streamlabel run`` as a subprocess on the test cluster, with scripted stages instead of models.

``python -m tests.cluster.driver_main CONFIG`` does what ``streamlabel run -c CONFIG`` does (the daemon, its
signals, the sink and the store) except loading models: the driver gets scripted stages and every labeler actor
builds the slow scripted ones (``tests.cluster.stages.slow``), so the test kills it mid-run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from streamlabel.cluster import engine
from streamlabel.config import load
from streamlabel.daemon.service import Daemon
from streamlabel.store.dataset import DatasetStore
from tests.cluster import stages
from tests.daemon.harness import scripted_stages


def main(config: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine.build_stages = stages.slow  # what the labeler actors build
    cfg = load(config)
    store = DatasetStore.from_config(cfg, Path(cfg.store.path))
    daemon = Daemon(cfg, config, scripted_stages(), store)
    daemon.install_signals()
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
