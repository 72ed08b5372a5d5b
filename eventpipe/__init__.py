"""eventpipe: never lose a Kubernetes Event."""

__version__ = "0.1.0"
