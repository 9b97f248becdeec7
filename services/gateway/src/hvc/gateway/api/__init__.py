"""HTTP routes of the gateway service beyond health and metrics."""
