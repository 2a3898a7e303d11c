"""Parsers: text or JSON in, model out.  Sans-IO: each takes (text, source)."""
