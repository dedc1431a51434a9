"""Each organisation's feed: its deliveries and notices, in order, behind an opaque cursor."""
