"""The receivers: one folder per type (`<name>/config.py`, `sink.py`, `README.md`), the
registry that names them (`registry.py`), and what several share (`http.py`, `encoding.py`).
How to add one: `eventpipe/sinks/README.md`."""

