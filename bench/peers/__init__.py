"""eventpipe measured beside the exporters it replaces; run with `python -m bench.peers`."""
