"""Involved-object enrichment: labels, annotations, owner chain and node added to Events at
delivery time, from list+watch metadata caches for the watched kinds (caches.py) and a
uid-keyed cache fed by rate-limited raw GETs for the rest (see enricher.py).

`build_enricher` is what the app calls; `EnrichedEvent` is what encoders check for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from eventpipe.enrich.apply import EnrichedEvent
from eventpipe.enrich.caches import MetadataCaches
from eventpipe.enrich.client import KubeObjectClient
from eventpipe.enrich.config import EnrichConfig
from eventpipe.enrich.enricher import Enricher, EnrichSettings
from eventpipe.enrich.informer import InformerSettings

__all__ = ["EnrichConfig", "EnrichSettings", "EnrichedEvent", "Enricher", "InformerSettings",
           "MetadataCaches", "build_enricher"]


def build_enricher(*, omit_lookup: bool, cache_size: int, kube_qps: float, kube_burst: int,
                   api_client: Any, registry: CollectorRegistry,
                   enrich: EnrichConfig | None = None, namespaces: Sequence[str] = (),
                   informer_settings: InformerSettings | None = None) -> Enricher | None:
    """The process's enricher from the resmo keys and the `enrich:` section; None when
    `omitLookup` is set. Its metadata caches (`enricher.caches`) start with `caches.start()`."""
    if omit_lookup:
        return None
    settings = EnrichSettings(cache_size=cache_size, qps=kube_qps, burst=kube_burst)
    client = KubeObjectClient(api_client, timeout=settings.request_timeout)
    enrich = enrich or EnrichConfig()
    caches = None
    if enrich.watch_kinds:
        caches = MetadataCaches(client, enrich, namespaces=list(namespaces) or [""],
                                settings=informer_settings or InformerSettings(
                                    page_size=enrich.page_size),
                                registry=registry)
    return Enricher(client, settings=settings, registry=registry, caches=caches)
