"""The kernel in Python: hooks, table walk, routing, conntrack, NAT."""
