"""Which watch streams a config asks for, and the key each one's resume point is saved under."""

from __future__ import annotations

from eventpipe.config import Config


def watch_streams(config: Config) -> list[str]:
    """Namespaces to watch: `watch.namespaces` plus resmo's `namespace`; [""] means all."""
    namespaces = list(dict.fromkeys([*config.watch.namespaces,
                                     *([config.namespace] if config.namespace else [])]))
    return namespaces or [""]


def stream_name(api_group: str, namespace: str) -> str:
    """The key the resume point is saved under, e.g. `core/*` or `events.k8s.io/team-a`."""
    return f"{api_group}/{namespace or '*'}"
