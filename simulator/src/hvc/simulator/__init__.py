"""hvc.simulator: a synthetic mobile operator that publishes contract events."""
