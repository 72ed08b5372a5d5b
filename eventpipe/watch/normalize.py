"""Turn one Event object (a plain dict, either API group) into a spool record.

core/v1 and events.k8s.io/v1 are two views of the same objects, so the indexed columns are
filled the same way for both: occurrences (`eventpipe.core.occurrences`) and the last-seen time
(`eventpipe.core.timestamps`) by the fallback chains both groups share. The body is stored as
served.
"""

from __future__ import annotations

from typing import Any

from eventpipe.core.occurrences import occurrences
from eventpipe.core.timestamps import last_seen
from eventpipe.spool.records import NewRecord


class MalformedEvent(ValueError):
    """The object lacks what every Event has (metadata.uid, metadata.resourceVersion)."""


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def to_record(obj: dict[str, Any], body: bytes) -> NewRecord:
    """Build the spool record for one Event version; raises MalformedEvent."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise MalformedEvent("event has no metadata object")
    uid = meta.get("uid")
    rv = meta.get("resourceVersion")
    if not isinstance(uid, str) or not uid or not isinstance(rv, str) or not rv:
        raise MalformedEvent("event lacks metadata.uid or metadata.resourceVersion")
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        involved = obj.get("regarding")
        if not isinstance(involved, dict):
            involved = {}
    namespace = _str(meta.get("namespace")) or _str(involved.get("namespace"))
    return (
        uid,
        rv,
        namespace,
        _str(involved.get("kind")),
        _str(involved.get("name")),
        _str(obj.get("reason")),
        _str(obj.get("type")),
        occurrences(obj),
        last_seen(obj),
        body,
    )
