"""Trace events and their renderers."""
