"""``streamlabel review``: serve the review page on a store without the daemon running (docs/review.md)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streamlabel.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    ConfigOpt,
    app,
    bench_app,
    console,
    load_or_exit,
    setup_logging,
)
from streamlabel.config import Config

if TYPE_CHECKING:
    from streamlabel.store import DatasetStore


@app.command("review")
def review_cmd(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    address: Annotated[
        str | None, typer.Option(help="HOST:PORT to serve on (default: review.address; 127.0.0.1:9311).")
    ] = None,
    store_path: Annotated[Path | None, typer.Option("--store", help="Store folder (default: store.path).")] = None,
) -> None:
    """Serve the review page (queue, item view, decisions) until Ctrl-C, on a store the daemon is not running on.

    A running daemon serves the page itself on review.address: use that one (one writer per store).
    """
    from streamlabel.review import ReviewConfigError, ReviewServer

    cfg = load_or_exit(config)
    setup_logging(cfg.daemon.log_level)
    root = store_path or Path(cfg.store.path)
    if not (root / "manifest.sqlite").is_file():
        console.print(f"[red]{root} holds no store (no manifest.sqlite); pass --store or set store.path[/]")
        raise typer.Exit(EXIT_CONFIG)
    store = _open_store(cfg, root)
    try:
        server = ReviewServer(cfg, store, address=address or cfg.review.address or "127.0.0.1:9311")
    except ReviewConfigError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    server.start()
    console.print(f"review page on {server.bound} (store {root}); Ctrl-C stops it", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        store.close()


def _open_store(cfg: Config, root: Path) -> DatasetStore:
    """The store at ``root`` with the config's store settings (as the daemon opens it)."""
    from streamlabel.store import DatasetStore

    return DatasetStore(
        root,
        [cfg.target.part.class_name],
        cfg.store.jpeg_quality,
        cfg.store.keep_rejected,
        publish_rejected=bool(cfg.mqtt and cfg.mqtt.publish_rejected),
        val_fraction=cfg.store.val_fraction,
        background_fraction=cfg.store.background_fraction,
        ignore_margin_px=cfg.store.ignore_margin_px,
    )


@bench_app.command("review")
def bench_review_cmd(
    items: Annotated[int, typer.Option(min=1, help="Parts in the throw-away manifest.")] = 100_000,
    repeats: Annotated[int, typer.Option(min=1, help="Timed requests per page (median and max are printed).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Time the review page (queue, filters, a deep page, the item) over a manifest of ITEMS parts; goal < 200 ms."""
    import json

    from streamlabel.bench.review import bench_review

    console.print(f"filling a manifest with {items} parts …")
    result = bench_review(items, repeats)
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"{result['items']} parts ({result['open_items']} open), filled in {result['fill_s']} s")
    for name, figures in result.items():
        if isinstance(figures, dict):
            console.print(f"  {name:<20} median {figures['median_ms']:>7.1f} ms   max {figures['max_ms']:>7.1f} ms")
