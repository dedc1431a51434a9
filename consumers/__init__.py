"""Samsyn consumer side: what each recipient organisation gets, and nothing more."""
