"""HTTP routes of the warnings service beyond health and metrics."""
