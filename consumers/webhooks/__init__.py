"""Optional push: each organisation's new feed items POSTed to its own URL, signed (HMAC)."""
