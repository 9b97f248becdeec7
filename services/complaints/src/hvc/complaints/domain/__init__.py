"""Pure rules of the complaints service: no I/O, no clock reads."""
