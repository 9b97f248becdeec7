"""The benefits service: tier benefits: entitlement ledger, claims, automatic grants."""
