"""The bottom layer: pure helpers every other package may use, importing nothing of eventpipe.

Backoff delays, task helpers, timestamp parsing, and the config framework each component's
model is built on (the `Model` base, durations and sizes, `ConfigError`, YAML with line
numbers). No I/O here besides what a caller hands in.
"""
