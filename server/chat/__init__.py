"""Chat domain: validation, presence and history. No sockets, no Flask."""
