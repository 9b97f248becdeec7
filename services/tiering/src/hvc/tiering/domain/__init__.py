"""Pure rules of the tiering service: no I/O, no clock reads."""
