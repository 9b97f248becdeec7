"""Pure rules of the gateway service: no I/O, no clock reads."""
