"""The `http:` section: where the one HTTP port (/metrics, /healthz, /readyz) listens."""

from __future__ import annotations

from pydantic import Field

from eventpipe.core.model import Model


class HttpConfig(Model):
    """The one HTTP port: /metrics, /healthz, /readyz."""

    address: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=2112, ge=0, le=65535, description="Port to listen on.")
