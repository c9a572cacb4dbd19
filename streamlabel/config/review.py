"""``review``: the review page in the browser (docs/review.md), served by the daemon or ``streamlabel review``."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from streamlabel.config.base import _Model

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` as ``(host, port)``; raises ValueError naming the value and the expected form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"review address {address!r} must be HOST:PORT, e.g. 127.0.0.1:9311")
    return host.strip("[]") if host.startswith("[") else host, int(port)


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` binds only the loopback interface."""
    return split_address(address)[0] in LOOPBACK_HOSTS


class ReviewConfig(_Model):
    """The review web page: where it listens, who may use it, and what the queue shows."""

    address: str | None = Field(
        "127.0.0.1:9311",
        description="HOST:PORT of the review page, served by the daemon; null turns it off. Any host other than "
        "loopback needs `token`.",
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token (or the password of the login form) for the review page; write ${REVIEW_TOKEN} "
        "and keep it out of the file. Required when `address` is not loopback.",
    )
    page_size: int = Field(
        48,
        ge=1,
        le=500,
        description="Items per queue page. Raising it shows more at once at the cost of a slower page (each item "
        "is a thumbnail).",
    )
    show_rejected: bool = Field(
        False, description="Also list parts the validator rejected in the queue (to catch false rejections)."
    )
    thumb_px: int = Field(
        160,
        ge=64,
        le=512,
        description="Edge of the zoomed part thumbnail in pixels. Raising it shows more detail at the cost of "
        "cache size and page weight.",
    )
    audit_fraction: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of stored frames (per stream, day or night and confidence bin) sent to the queue as "
        "audit items whatever their status, to measure the validator on an uncensored sample (/calibration). "
        "Raising it narrows the calibration intervals at the cost of review time; 0 turns the audit off.",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ReviewConfig:
        if self.needs_token():
            raise ValueError(
                f"review.address {self.address} is not loopback and review.token is unset: anyone on the network "
                "could decide labels. Set review.token: ${REVIEW_TOKEN} or bind 127.0.0.1"
            )
        return self

    def needs_token(self, address: str | None = None) -> bool:
        """Whether serving on ``address`` (default: the configured one) without a token would be refused."""
        where = address or self.address
        return bool(where) and not is_loopback(where) and self.token is None  # type: ignore[arg-type]
