"""Pure rules of the benefits service: no I/O, no clock reads."""
