"""Rebuild a snapshot in network namespaces and ask the real kernel (needs root)."""
