"""The child view and emergency access (nödöppning)."""
