"""HTTP routes of the benefits service beyond health and metrics."""
