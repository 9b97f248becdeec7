"""The complaints service: complaint SLA clocks, escalation, work orders."""
