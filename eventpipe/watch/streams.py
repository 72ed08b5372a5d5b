"""The key each watch stream's resume point is saved under."""

from __future__ import annotations


def stream_name(api_group: str, namespace: str) -> str:
    """The key the resume point is saved under, e.g. `core/*` or `events.k8s.io/team-a`."""
    return f"{api_group}/{namespace or '*'}"
