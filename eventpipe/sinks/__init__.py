"""The receivers: one folder per type (`<name>/config.py`, `sink.py`, `README.md`), the
registry that names them (`registry.py`), and what several share (`http.py`, `encoding.py`).
How to add one: `eventpipe/sinks/README.md`."""

# The config package builds the `Receiver` model from the registry, which imports the models
# in the folders here: loading it first means they exist whichever module is imported first.
import eventpipe.config  # noqa: F401
