"""eventpipe: never lose a Kubernetes Event."""

from eventpipe.kube import lazy

__version__ = "0.1.0"

# Before anything imports kubernetes_asyncio: its eager client import is most of our start-up
# memory (kube/lazy.py).
lazy.install()
