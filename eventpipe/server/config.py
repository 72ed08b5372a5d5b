"""The `http:` section: where the one HTTP port (/metrics, /healthz, /readyz) listens."""

from __future__ import annotations

from pydantic import Field

from eventpipe.core.model import Model


class HttpConfig(Model):
    """The one HTTP port: /metrics, /healthz, /readyz."""

    address: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=2112, ge=0, le=65535, description="Port to listen on.")


class MetricsReceiverConfig(Model):
    """The Prometheus alerting guide's `metricsReceiver:` section: the port of /metrics."""

    port: int = Field(ge=0, le=65535, description="Port of /metrics, /healthz and /readyz: the "
                      "same as `http.port`, under the name that guide's config uses.")
