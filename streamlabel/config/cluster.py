"""``cluster``: run the readers and labelers as Ray actors across machines (docs/cluster.md).

Without this section nothing changes: the single-process daemon is the default and Ray is not imported.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from streamlabel.config.base import _Model


class ClusterStreamConfig(_Model):
    """Where one stream's reader runs."""

    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources the stream's reader actor asks for, e.g. {cam_net_a: 0.01}: start the "
        "node on the camera's network with `ray start --resources '{\"cam_net_a\": 1}'` and the reader runs "
        "there. When no live node offers them (the node died), the reader is placed on any node and a warning "
        "is logged.",
    )

    @field_validator("resources")
    @classmethod
    def _positive(cls, resources: dict[str, float]) -> dict[str, float]:
        for name, amount in resources.items():
            if amount <= 0:
                raise ValueError(f"cluster resource {name!r} amount {amount} must be > 0 (e.g. 0.01)")
        return resources


class ClusterConfig(_Model):
    """The Ray engine: the daemon is the driver (and the only store writer); readers and labelers are actors."""

    engine: Literal["ray"] = Field("ray", description="The distributed engine; only Ray is supported.")
    address: str = Field(
        "local",
        description="`local` starts Ray inside the daemon for one machine; `auto` joins the cluster started on "
        "this machine with `ray start`; HOST:PORT joins the head at that address. `ray://` (Ray Client) is "
        "refused: a client's actors and objects are dropped 30 s after a disconnect.",
    )
    labelers: int = Field(
        1,
        ge=1,
        le=1024,
        description="Labeler actors (usually one per GPU). Raising it labels more streams at once at the cost of "
        "one copy of every model per actor.",
    )
    labeler_num_gpus: float = Field(
        0.0,
        ge=0,
        le=16,
        description="GPUs each labeler actor reserves (1 for one per GPU). Raising it above 0 places labelers "
        "only on GPU nodes; a labeler that no node can hold never starts.",
    )
    labeler_num_cpus: float = Field(
        1.0,
        ge=0,
        le=256,
        description="CPUs each labeler actor reserves. Raising it spreads labelers over more nodes at the cost of "
        "CPUs left for readers and other work.",
    )
    reader_num_cpus: float = Field(
        0.25,
        ge=0,
        le=64,
        description="CPUs each reader actor reserves (decode). Raising it keeps decoding from being crowded out "
        "at the cost of fewer readers per node.",
    )
    streams: dict[str, ClusterStreamConfig] = Field(
        default_factory=dict,
        description="Placement per stream name (a key of `streams`); a stream not listed runs its reader anywhere.",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        le=1000,
        description="Times a stream is restarted (new reader, another labeler) after its reader or labeler died, "
        "and times a dead labeler is replaced. Raising it survives more failures at the cost of a stream that "
        "keeps crashing being retried longer before it goes offline.",
    )
    frames_in_flight: int = Field(
        8,
        ge=1,
        le=1024,
        description="Sampled frames per stream taken from its reader but not yet stored. Raising it hides "
        "network and scheduling latency at the cost of memory in the object store and more frames re-read (file) "
        "or missed (camera) when an actor dies.",
    )
    transport: Literal["array", "jpeg"] = Field(
        "array",
        description="How frames travel from reader to labeler: `array` (raw RGB through the object store, labels "
        "identical to the single-process daemon) or `jpeg` (about 50x fewer bytes for a 1080p frame, at the cost "
        "of encode/decode CPU and JPEG artefacts in what the models see).",
    )
    ping_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Seconds a new actor has to answer its first ping (loading the models included). Raising it "
        "tolerates slow model loads at the cost of noticing an unplaceable actor later.",
    )

    @field_validator("address")
    @classmethod
    def _no_client(cls, address: str) -> str:
        if address.startswith("ray://"):
            raise ValueError(
                f"cluster.address {address!r} uses Ray Client, whose actors and objects are dropped 30 s after a "
                "disconnect: run the daemon on the head node with address `auto` (or HOST:PORT of the head's GCS, "
                "default port 6379) instead"
            )
        if address not in ("local", "auto") and not _host_port(address):
            raise ValueError(f"cluster.address {address!r} must be `local`, `auto` or HOST:PORT of the Ray head")
        return address


def _host_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)
