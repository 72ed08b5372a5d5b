"""URL checks shared by every network receiver's config model."""

from __future__ import annotations

from yarl import URL


def check_url(value: str, key: str) -> str:
    """`value` if it is an http(s) URL with a host; the error never echoes it (tokens)."""
    try:
        url = URL(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{key}: must be an http:// or https:// URL with a host")
    return value
