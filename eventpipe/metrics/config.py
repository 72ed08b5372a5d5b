"""The `metrics:` section: how the event counter `{metricsNamePrefix}events_total` guards its
cardinality.

Every distinct (namespace, kind, name, reason, type) becomes a series, and pod names churn, so
a busy cluster would grow the counter without bound. Three knobs bound it: idle series expire,
a hard cap refuses new series (counted in `eventpipe_event_series_overflow_total`), and the
object-name label can be dropped altogether. When `objectNameLabel` is false the
`involved_object_name` label is omitted from every series (not set to ""), so the label set
stays the same for the life of the process and series that differed only by name are summed.
The metric name and prefix stay top-level (`metricsNamePrefix`), as in resmo.
"""

from __future__ import annotations

from pydantic import Field

from eventpipe.core.model import Model
from eventpipe.core.units import Duration


class MetricsConfig(Model):
    """Cardinality limits of the event counter."""

    series_ttl: Duration = Field(
        default=3600.0, alias="seriesTTL",
        description="Drop an event-counter series not incremented for this long; 0 = never. "
        "A series that comes back starts again from zero.",
    )
    max_series: int = Field(
        default=10_000, ge=1, alias="maxSeries",
        description="Most event-counter series at once; occurrences that would need a new "
        "series beyond this are counted in eventpipe_event_series_overflow_total instead.",
    )
    object_name_label: bool = Field(
        default=True, alias="objectNameLabel",
        description="Label series with `involved_object_name`. When false the label is "
        "omitted (series of different objects of one kind/reason are summed); alert "
        "annotations cannot name the object then.",
    )
