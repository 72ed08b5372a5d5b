"""The `kafka` receiver (see README.md here).

No imports: the registry loads `config` when a config file uses this receiver type, and
`sink` when a receiver of it is built.
"""
