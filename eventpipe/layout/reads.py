"""Which templates read what enrichment adds to an Event's involved object.

A receiver whose templates (its `layout:`, or any other templated key: headers, topics, index
names, labels, bot messages) read the involved object's labels, annotations, owner or node
must not render them from a cold cache at start-up, exactly as a route on labels must not
route on one: its delivery waits for the metadata caches (eventpipe.enrich, at most
`enrich.syncTimeout`). The answer is conservative: the names are matched at any depth (`.Labels`
also names the Event's own labels), and a value read whole (`{{ toJson . }}`, a bare `.` or
`$x`) counts, since it may print the enriched object.
"""

from __future__ import annotations

from eventpipe.layout.compiler import WHOLE
from eventpipe.layout.errors import LayoutError
from eventpipe.layout.template import compile_template

OBJECT_METADATA = frozenset(("labels", "annotations", "owner", "ownerReferences", "node",
                             "deleted", WHOLE))
"""What enrichment adds under `involvedObject` (eventpipe.enrich.apply), and a whole value."""


def reads_object_metadata(value: object) -> bool:
    """True when a template in `value` (a string, or nested dicts and lists of them, such as a
    receiver's config) reads enrichment's additions. Strings without `{{` are not templates;
    one that does not compile is the receiver's own config error, reported where it is built."""
    if isinstance(value, str):
        if "{{" not in value:
            return False
        try:
            return not compile_template(value).reads.isdisjoint(OBJECT_METADATA)
        except LayoutError:
            return False
    if isinstance(value, dict):
        return any(reads_object_metadata(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(reads_object_metadata(v) for v in value)
    return False
