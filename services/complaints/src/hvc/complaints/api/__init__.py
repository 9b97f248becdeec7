"""HTTP routes of the complaints service beyond health and metrics."""
