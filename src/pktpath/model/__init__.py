"""The pure model: frozen dataclasses only -- no parsing, no evaluation, no I/O."""
