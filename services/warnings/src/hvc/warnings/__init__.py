"""The warnings service: churn warnings and retention tasks."""
