"""Organisations, API clients, consents and relationships: who may take part, and how."""
