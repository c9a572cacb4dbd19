"""The review page in the browser: queue, item view, decisions (docs/review.md)."""

from streamlabel.review.app import create_app
from streamlabel.review.server import ReviewConfigError, ReviewServer, review_server

__all__ = ["ReviewConfigError", "ReviewServer", "create_app", "review_server"]
