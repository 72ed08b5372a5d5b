"""eventpipe: never lose a Kubernetes Event."""

from eventpipe import kubelazy

__version__ = "0.1.0"

# Before anything imports kubernetes_asyncio: its eager client import is most of our start-up
# memory (kubelazy.py).
kubelazy.install()
