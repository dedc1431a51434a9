"""Samsyn broker: ingest, registry, policy router and audit trail."""
