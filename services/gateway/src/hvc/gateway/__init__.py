"""The gateway service: the operator's HTTP API."""
