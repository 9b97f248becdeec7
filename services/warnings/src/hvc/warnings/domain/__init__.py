"""Pure rules of the warnings service: no I/O, no clock reads."""
