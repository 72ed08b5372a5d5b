"""The `metrics` receiver (see README.md here).

No imports: the registry loads `config` at startup and `sink` only when a receiver uses it.
"""
