"""One router per area of the review page: auth (public), queue and items (guarded)."""
