"""The Dalsland demo: seed organisations and clients, and play one child's year (``make demo``).

Everything here goes through the public HTTP API, as an integrating system would.
"""
