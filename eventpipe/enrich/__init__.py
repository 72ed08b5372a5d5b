"""Involved-object enrichment: labels, annotations, owner chain and node added to Events at
delivery time, from a uid-keyed cache fed by rate-limited raw GETs (see enricher.py).

`build_enricher` is what the app calls; `EnrichedEvent` is what encoders check for.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from eventpipe.enrich.apply import EnrichedEvent
from eventpipe.enrich.client import KubeObjectClient
from eventpipe.enrich.enricher import Enricher, EnrichSettings

__all__ = ["EnrichSettings", "EnrichedEvent", "Enricher", "build_enricher"]


def build_enricher(*, omit_lookup: bool, cache_size: int, kube_qps: float, kube_burst: int,
                   api_client: Any, registry: CollectorRegistry) -> Enricher | None:
    """The process's enricher from the resmo keys; None when `omitLookup` is set."""
    if omit_lookup:
        return None
    settings = EnrichSettings(cache_size=cache_size, qps=kube_qps, burst=kube_burst)
    client = KubeObjectClient(api_client, timeout=settings.request_timeout)
    return Enricher(client, settings=settings, registry=registry)
