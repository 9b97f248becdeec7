"""Plumbing shared by every hvc service: no business rules live here."""
