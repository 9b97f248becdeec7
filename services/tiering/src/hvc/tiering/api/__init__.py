"""HTTP routes of the tiering service beyond health and metrics."""
