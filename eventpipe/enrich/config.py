"""The `enrich:` section: which kinds are kept in list+watch metadata caches, and their bounds.

resmo's own enrichment keys (`omitLookup`, `cacheSize`, `kubeQPS`, `kubeBurst`) stay top-level
and still govern the GET lookups of kinds not watched here (custom resources).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from eventpipe.core.model import Model
from eventpipe.core.units import Duration
from eventpipe.enrich.kinds import DEFAULT_KINDS, KINDS


class EnrichConfig(Model):
    """Metadata caches for enrichment (list + watch per kind)."""

    watch_kinds: list[str] = Field(
        default_factory=lambda: list(DEFAULT_KINDS), alias="watchKinds",
        description="Kinds kept in list+watch metadata caches (one list+watch per kind, per "
        f"namespace in namespaced mode); any of {', '.join(KINDS)}. Other kinds are looked "
        "up with rate-limited GETs. Empty: GETs only.",
    )
    sync_timeout: Duration = Field(
        default=30.0, alias="syncTimeout",
        description="At start, how long events wait for the caches to sync when a route, or a "
        "receiver's layout or template, reads labels, annotations or the owner; after it they "
        "go on unenriched (counted).",
    )
    tombstone_ttl: Duration = Field(
        default=600.0, alias="tombstoneTTL",
        description="How long a deleted object's last labels and owner are kept (its late "
        "events are enriched and marked `deleted: true`).",
    )
    max_objects: int = Field(
        default=40_000, ge=1, alias="maxObjects",
        description="Most objects held in the caches (all kinds, tombstones included); about "
        "0.75 MiB per 1,000 objects, so the default (~30 MiB, some 33,000 pods with their "
        "owners) fits the chart's 128Mi limit; raise both together. At the bound the oldest "
        "tombstones go first; then new objects are not cached and events about them fall "
        "back to rate-limited GETs (eventpipe_enrich_cache_full_total).",
    )
    page_size: int = Field(default=500, ge=1, alias="pageSize",
                           description="LIST page size of the metadata caches.")

    @field_validator("watch_kinds")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in KINDS]
        if unknown:
            raise ValueError(f"cannot watch {', '.join(unknown)}: watchKinds takes "
                             f"{', '.join(KINDS)}")
        return list(dict.fromkeys(value))
